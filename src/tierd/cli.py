"""The ``tierd`` command line.

Each subcommand is one function taking the parsed arguments and returning the
exit code. User mistakes (a bad config, a refused message) print one line per
problem to standard error and exit non-zero, never with a traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING

from .config import DEFAULT_TOPOLOGY, load_config
from .errors import ConfigError
from .logging import LEVELS
from .logging import configure as configure_logging
from .runtime import Runtime

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import FrameType

EXIT_OK = 0
EXIT_FAILED = 1
"""The command ran and failed: a timeout, a remote error, an invalid config."""
EXIT_USAGE = 2
"""The command could not run: bad arguments, unreadable config."""


def cmd_check(args: argparse.Namespace) -> int:
    """Validate a config without starting anything."""
    try:
        config = load_config(args.config)
    except ConfigError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return EXIT_FAILED
    daemons = sum(len(level.daemons) for level in config.levels)
    print(
        f"{args.config}: ok: {len(config.levels)} level(s), {daemons} daemon(s), "
        f"{len(config.peers)} peer(s)"
    )
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    """Run a topology in the foreground until SIGINT or SIGTERM."""
    path = args.config or DEFAULT_TOPOLOGY
    try:
        config = load_config(path)
    except ConfigError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return EXIT_FAILED
    configure_logging(
        args.log_format or config.runtime.log_format, args.log_level or config.runtime.log_level
    )
    runtime = Runtime(config)
    try:
        runtime.start()
    except (ConfigError, OSError) as error:
        print(f"{path}: cannot start: {error}", file=sys.stderr)
        return EXIT_FAILED
    _print_banner(runtime, str(path))
    stop_requested = threading.Event()
    _on_stop_signals(stop_requested.set)
    stop_requested.wait()
    runtime.stop()
    return EXIT_OK


def _print_banner(runtime: Runtime, path: str) -> None:
    section = runtime.config.runtime
    levels = ", ".join(str(level) for level in runtime.config.local_levels)
    print(f"tierd {section.name!r} running {path}: levels {levels}", flush=True)
    if section.endpoint:
        print(f"  clients and peers: {section.endpoint}", flush=True)
    if section.metrics:
        print(f"  metrics:           http://{section.metrics}/metrics", flush=True)
    first = runtime.config.levels[0]
    target = f"{first.daemons[0].id}@{first.level}"
    print(f'  try:               tierd request {target} \'{{"hello": "world"}}\'', flush=True)
    print("  stop:              Ctrl-C (twice to exit at once)", flush=True)


def _on_stop_signals(request_stop: Callable[[], None]) -> None:
    """First SIGINT/SIGTERM asks for a graceful stop; a second one exits at once."""
    asked = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        if asked.is_set():
            os._exit(128 + signum)
        asked.set()
        request_stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="tierd", description="Run and talk to tierd message orchestrators."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run a topology in the foreground")
    run.add_argument("config", nargs="?", help="TOML topology (default: the built-in one)")
    run.add_argument("--log-level", choices=LEVELS, help="override runtime.log_level")
    run.add_argument(
        "--log-format", choices=("console", "json"), help="override runtime.log_format"
    )
    run.set_defaults(func=cmd_run)

    check = commands.add_parser("check", help="validate a topology without starting it")
    check.add_argument("config", help="TOML topology")
    check.set_defaults(func=cmd_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tierd`` command; return its exit code."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
