"""``tierd events`` and ``tierd status --watch``: what a runtime does, as it happens.

``tierd events`` follows the runtime's live events (DESIGN §12) and prints
one line each (`format_event`), or one JSON object per line with ``--json``.
``tierd status --watch`` redraws the status table in place (``rich.live``)
every ``--interval`` seconds.
"""

from __future__ import annotations

import datetime
import json
import sys
import threading
from typing import TYPE_CHECKING, Any, Final

from rich.console import Console
from rich.live import Live
from rich.text import Text

from ._status import format_status
from .errors import ConfigError
from .messaging._transport.client import events_endpoint

if TYPE_CHECKING:
    import argparse

    from .messaging._transport.client import Client

_KEY_FIELDS: Final = ("step", "attempt", "delay", "priority", "from_step", "interrupted")
"""Fields printed as ``key=value`` after the event's type, when present."""


def format_event(event: dict[str, Any]) -> str:
    """One readable line: time, topic, type, then the fields that matter for its type.

    Example: ``12:00:01.250  process.import.01J…  step_progress  step=fetch 62% part 3``.
    """
    at = event.get("at")
    when = (
        datetime.datetime.fromtimestamp(at).strftime("%H:%M:%S.%f")[:-3]
        if isinstance(at, int | float)
        else "--:--:--.---"
    )
    parts = [when, str(event.get("topic", "?")), str(event.get("type", "?"))]
    if event.get("type") == "daemon_state":
        parts.append(f"{event.get('previous')} -> {event.get('state')}")
    parts += [f"{key}={event[key]}" for key in _KEY_FIELDS if event.get(key) is not None]
    duration = event.get("duration")
    if isinstance(duration, int | float):
        parts.append(f"{duration:.3f}s")
    progress = event.get("progress")
    if isinstance(progress, int | float):
        parts.append(f"{progress:.0%}")
    if event.get("note"):
        parts.append(str(event["note"])[:60])
    if "seq" in event:
        parts.append(f"seq={event['seq']}")
    error = event.get("error")
    if isinstance(error, dict):
        parts.append(f"{error.get('error_type')}: {' '.join(str(error.get('message')).split())}")
    return "  ".join(parts)


def follow_events(args: argparse.Namespace, client: Client) -> int:
    """Print the runtime's live events until Ctrl-C (``KeyboardInterrupt``: the caller's).

    Returns:
        1 if the runtime publishes no events (its ``runtime.events`` is "").
    """
    endpoint = args.connect
    if endpoint is None:
        try:
            endpoint = events_endpoint(client.status(timeout=args.timeout), client.endpoint)
        except ConfigError as error:
            print(f"tierd events: {error}", file=sys.stderr)
            return 1
    with client.events(*args.prefixes, endpoint=endpoint) as stream:
        print(
            f"tierd events: following {', '.join(args.prefixes) or 'every topic'} "
            f"at {stream.endpoint} (Ctrl-C to stop)",
            file=sys.stderr,
            flush=True,
        )
        for event in stream:
            line = json.dumps(event, default=repr) if args.json else format_event(event)
            print(line, flush=True)
    return 0


def watch_status(client: Client, interval: float, timeout: float) -> None:
    """Redraw the status table in place every ``interval`` seconds until Ctrl-C."""
    console = Console()
    tick = threading.Event()  # never set: a wait that Ctrl-C can interrupt
    report = client.status(timeout=timeout)
    with Live(Text(format_status(report)), console=console, auto_refresh=False) as live:
        while True:
            tick.wait(interval)
            report = client.status(timeout=timeout)
            live.update(Text(format_status(report)), refresh=True)
