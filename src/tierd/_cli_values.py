"""What the ``tierd`` command's arguments mean, each refused in one line before anything runs.

The argument types (``type=`` of argparse) raise `argparse.ArgumentTypeError`,
which the command prints as ``tierd COMMAND: argument --x: what is wrong``;
`parse_payload` raises `UsageError`. Both end the command with exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ._durations import parse_duration
from .config import check_endpoint
from .messaging.message import MAX_DELAY, MAX_TIMEOUT, Address, check_timeout, parse_priority


class UsageError(Exception):
    """A command-line value that is wrong before anything is sent (exit 2)."""


def parse_payload(text: str | None) -> Any:
    """The value a PAYLOAD argument stands for: JSON, ``@file`` (JSON in a file) or ``-`` (stdin).

    None (no argument) is a null payload.

    Raises:
        UsageError: the file cannot be read, or the text is not JSON.
    """
    if text is None:
        return None
    where = ""
    if text == "-":
        where, text = " on standard input", sys.stdin.read()
    elif text.startswith("@"):
        name = text[1:]
        if not name:
            raise UsageError("'@' needs a file name: @payload.json reads the JSON in that file")
        try:
            text = Path(name).read_text(encoding="utf-8")
        except OSError as error:
            raise UsageError(
                f"cannot read the payload file {name}: {error.strerror or error}"
            ) from None
        except UnicodeDecodeError:
            raise UsageError(f"the payload file {name} is not UTF-8 text") from None
        where = f" in {name}"
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        if where:
            raise UsageError(f"the payload{where} is not JSON: {error}") from None
        raise UsageError(
            f"the payload is not JSON ({error}); quote it, e.g. '{{\"x\": 1}}', "
            "or pass @FILE (JSON in a file) or - (JSON on standard input)"
        ) from None


def endpoint_argument(text: str) -> str:
    """An ``--endpoint``: a ZeroMQ endpoint, or a bare ``host:port`` meaning ``tcp://host:port``."""
    endpoint = text.strip()
    if endpoint and "://" not in endpoint:
        endpoint = f"tcp://{endpoint}"
    try:
        return check_endpoint(endpoint)
    except ValueError as error:
        if str(error).startswith("bad port"):  # named as the user wrote it
            raise argparse.ArgumentTypeError(
                str(error).replace(repr(endpoint), repr(text))
            ) from None
        raise argparse.ArgumentTypeError(
            f"bad endpoint {text!r}: expected host:port or tcp://host:port, e.g. 127.0.0.1:5555"
        ) from None


def run_endpoint_argument(text: str) -> str:
    return "" if text == "" else endpoint_argument(text)


def timeout_argument(text: str) -> float:
    """A ``--timeout``: seconds, above 0, finite, at most what the wire carries."""
    try:
        return check_timeout(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds above 0 and at most {MAX_TIMEOUT:g} (7 days)"
        ) from None


def delay_argument(text: str) -> float:
    """A ``--delay``: a duration (``30``, ``90s``, ``15m``, ``2h``) from 0 to 7 days."""
    try:
        seconds = parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if seconds > MAX_DELAY:
        raise argparse.ArgumentTypeError(
            f"{text!r} is more than {MAX_DELAY:g} s (7 days); use a schedule for later work"
        )
    return seconds


def priority_argument(text: str) -> int:
    try:
        return parse_priority(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def target_argument(text: str) -> str:
    try:
        return str(Address.parse(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def app_dir_argument(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: no such directory")
    return path


def count_argument(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def level_argument(text: str) -> int:
    value = count_argument(text)
    if value < 1:
        raise argparse.ArgumentTypeError("levels are numbered from 1")
    return value
