"""``tierd process …``: submit, show, list, watch and control processes from a shell.

Tables for people (rich renders them; plain text when the output is not a
terminal), ``--json`` for scripts. ``watch`` draws one live progress bar per
step with rich until the process finishes, from the process's live events
(``runtime.events``), or by reading its status four times a second when the
runtime publishes none.

Exit codes, as for every ``tierd`` command: 0 done; 1 the runtime failed
(a timeout, the store, a process that ended failed with ``--wait``); 2 a user
mistake (bad arguments, an unknown id or kind, params the kind refuses, a
control the state does not allow); 130 Ctrl-C.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import sys
import time
from typing import TYPE_CHECKING, Any, Final

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Column, Table

from ._durations import parse_duration
from .errors import ConfigError, ProcessNotFound, Rejected, RequestTimeout

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    from .messaging._transport.client import Client, EventSubscription

FINISHED: Final = frozenset({"completed", "failed", "cancelled", "timeout"})
_WATCH_INTERVAL: Final = 0.25
"""Seconds between two status reads of ``watch`` against a runtime that publishes no events."""
_QUIET: Final = 1.0
"""Seconds without an event after which ``watch`` reads the status anyway."""


class ProcessUsageError(Exception):
    """A process command asked for something that cannot be (exit 2)."""


USER_MISTAKES: Final[tuple[type[Exception], ...]] = (ProcessNotFound, Rejected, ProcessUsageError)
"""Errors from the runtime that are the user's to fix: exit 2, not 1."""


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=repr))


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}s"


def _since(text: str | None, now: float) -> float | None:
    if text is None:
        return None
    try:
        return now - parse_duration(text)
    except ValueError as error:
        raise ProcessUsageError(f"--since/--until: {error}") from None


def show_table(status: dict[str, Any], console: Console) -> None:
    """The status document as two tables: the process, then its steps."""
    head = Table(show_header=False, box=None)
    for key in ("process_id", "kind", "status", "priority", "progress", "current_step"):
        value = status[key]
        head.add_row(key, f"{value:.0%}" if key == "progress" else str(value))
    for key in ("created_at", "started_at", "finished_at", "estimated_completion"):
        head.add_row(key, _when(status[key]))
    if status["error"]:
        error = status["error"]
        head.add_row("error", f"{error['error_type']}: {error['message']}")
    if "total_items" in status:
        head.add_row("items", items_line(status))
        head.add_row("batch", batch_line(status))
    if status["status"] == "completed":
        head.add_row("result", json.dumps(status["result"], default=repr)[:200])
    console.print(head)
    steps = Table("step", "status", "progress", "attempts", "duration", "cpu", "last error")
    for name, step in status["steps"].items():
        errors = step["errors"]
        steps.add_row(
            name, step["status"], f"{step['progress']:.0%}", str(step["attempts"]),
            _seconds(step["duration"]), _seconds(step["cpu"]),
            errors[-1]["message"][:60] if errors else "",
        )  # fmt: skip
    console.print(steps)


def items_line(status: dict[str, Any]) -> str:
    """A batch's items in one line: done, failed, skipped, of the total (``?`` while unknown)."""
    total = status["total_items"]
    done = status["completed_items"] + status["failed_items"] + status["skipped_items"]
    skipped = f", {status['skipped_items']} skipped" if status["skipped_items"] else ""
    return (
        f"{done}/{'?' if total is None else total} done: {status['completed_items']} completed, "
        f"{status['failed_items']} failed{skipped}"
    )


def batch_line(status: dict[str, Any]) -> str:
    """The batch in progress in one line: its number, its items done and failed, its retry."""
    current = status.get("batch")
    if not current:
        return f"none running ({status['batches']} run)"
    done = current["completed"] + current["failed"]
    retry = f", retry {current['round']}" if current["round"] else ""
    return (
        f"{current['number']}: {done}/{current['items']} done, {current['failed']} failed, "
        f"{current['in_flight']} in flight{retry}"
    )


def cmd_items(args: argparse.Namespace, client: Client) -> int:
    """A page of a batch's items by index."""
    page = client.processes.items(
        args.id, status=args.status, cursor=args.cursor, limit=args.limit, timeout=args.timeout
    )
    if args.json:
        _print_json(page)
        return 0
    table = Table("index", "status", "attempts", "item", "error")
    for item in page["items"]:
        error = item["error"]
        table.add_row(
            str(item["index"]), item["status"], str(item["attempts"]),
            _shortened(json.dumps(item["item"], default=repr), 40),
            f"{error['error_type']}: {error['message']}" if error else "",  # the why, whole
        )  # fmt: skip
    console = Console()
    console.print(table)
    more = f"; next page: --cursor {page['cursor']}" if page["cursor"] else ""
    console.print(f"{len(page['items'])} item(s){more}")
    return 0


def cmd_submit(args: argparse.Namespace, client: Client, payload: Any) -> int:
    """Submit; print the id, or the final status with --wait, or live bars with --watch."""
    pid = client.processes.submit(
        args.kind, payload, priority=args.priority, key=args.key, timeout=args.timeout
    )
    if args.watch:
        return watch(client, pid, Console())
    if args.wait:
        final = client.processes.wait(pid, timeout=args.wait_timeout)
        if args.json:
            _print_json(final)
        else:
            show_table(final, Console())
        return 0 if final["status"] == "completed" else 1
    print(json.dumps({"process_id": pid}) if args.json else pid)
    return 0


def cmd_show(args: argparse.Namespace, client: Client) -> int:
    """The status of one process."""
    status = client.processes.get(args.id, timeout=args.timeout)
    if args.json:
        _print_json(status)
    else:
        show_table(status, Console())
    return 0


def cmd_list(args: argparse.Namespace, client: Client) -> int:
    """A page of processes, newest first."""
    now = time.time()
    page = client.processes.list(
        status=args.status, kind=args.kind, since=_since(args.since, now),
        until=_since(args.until, now), limit=args.limit, cursor=args.cursor,
        timeout=args.timeout,
    )  # fmt: skip
    if args.json:
        _print_json(page)
        return 0
    id_column = Column("process_id", no_wrap=True)
    table = Table(
        id_column, "kind", Column("status", no_wrap=True), Column("progress", no_wrap=True),
        "step", "created",
    )  # fmt: skip
    for item in page["items"]:
        table.add_row(
            item["process_id"], item["kind"], item["status"], f"{item['progress']:.0%}",
            item["current_step"] or "-", _when(item["created_at"]),
        )  # fmt: skip
    console = Console()
    console.print(table)
    more = f"; next page: --cursor {page['cursor']}" if page["cursor"] else ""
    console.print(f"{len(page['items'])} process(es){more}")
    return 0


def cmd_history(args: argparse.Namespace, client: Client) -> int:
    """The events of one process."""
    events = client.processes.history(args.id, timeout=args.timeout)
    if args.json:
        _print_json(events)
        return 0
    table = Table("seq", "at", "event", "step", "detail")
    for event in events:
        detail = {k: v for k, v in event.items() if k not in {"seq", "at", "type", "step"}}
        table.add_row(
            str(event["seq"]), _when(event["at"]), event["type"], event.get("step", ""),
            json.dumps(detail, default=repr)[:80] if detail else "",
        )  # fmt: skip
    Console().print(table)
    return 0


def watch(client: Client, pid: str, console: Console) -> int:
    """Live progress bars, one per step, until the process finishes; 0 if it completed."""
    status = client.processes.get(pid)
    console.print(f"watching process {pid} ({status['kind']}); Ctrl-C stops watching, not it")
    console.file.flush()
    progress = Progress(
        TextColumn("{task.fields[step]:<16}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[state]:<10}"), TextColumn("{task.fields[note]}"),
        console=console,
    )  # fmt: skip
    tasks: dict[str, TaskID] = {
        name: progress.add_task(name, total=1.0, step=name, state="pending", note="")
        for name in status["steps"]
    }
    batched = "total_items" in status
    if batched:  # a batch: a bar for the batch in progress under its items' bar
        tasks[" batch"] = progress.add_task("batch", total=1.0, step="batch", state="", note="")
    stream = _follow(client, status)
    with progress, stream or contextlib.nullcontext():
        while True:
            for name, step in status["steps"].items():
                note = items_line(status) if batched else step["note"] or ""
                progress.update(
                    tasks[name], completed=step["progress"], state=step["status"],
                    note=note[:60],
                )  # fmt: skip
            if batched:
                current = status["batch"] or {}
                share = (
                    (current["completed"] + current["failed"]) / current["items"] if current else 0
                )
                progress.update(
                    tasks[" batch"], completed=share, state=f"#{status['current_batch'] or '-'}",
                    note=batch_line(status)[:60],
                )  # fmt: skip
            if status["status"] in FINISHED:
                break
            status = _next_status(client, status, stream)
    error = status["error"]
    detail = f": {error['error_type']}: {error['message']}" if error else ""
    console.print(f"process {pid} {status['status']}{detail}")
    return 0 if status["status"] == "completed" else 1


def _follow(client: Client, status: dict[str, Any]) -> EventSubscription | None:
    """The process's live events, or None if the runtime publishes none (then ``watch`` polls)."""
    try:
        return client.events(f"process.{status['kind']}.{status['process_id']}")
    except (ConfigError, RequestTimeout):
        return None


def _next_status(
    client: Client, status: dict[str, Any], stream: EventSubscription | None
) -> dict[str, Any]:
    """The status after the next change: a progress event applied, else read again.

    The resync rule of docs/events.md: an event older than the status is
    skipped; a gap, a quiet spell or a transition reads the status again.
    """
    if stream is None:
        time.sleep(_WATCH_INTERVAL)  # no events: polling the runtime
        return client.processes.get(status["process_id"])
    while True:
        event = stream.receive(timeout=_QUIET)
        if event is None or event.get("seq", 0) > status["seq"]:
            break
    if (
        event is not None
        and event["seq"] == status["seq"] + 1
        and event["type"] == "step_progress"
        and "total_items" not in status  # a batch's bars need its item counts: read them
        and event.get("step") in status["steps"]
        and isinstance(event.get("progress"), int | float)
    ):
        step = status["steps"][event["step"]]
        step["progress"], step["note"] = event["progress"], str(event.get("note") or "")
        status["seq"] = event["seq"]
        return status
    return client.processes.get(status["process_id"])


def cmd_watch(args: argparse.Namespace, client: Client) -> int:
    """Watch one process; with --json, wait and print its final status instead."""
    if args.json:
        final = client.processes.wait(args.id)
        _print_json(final)
        return 0 if final["status"] == "completed" else 1
    return watch(client, args.id, Console())


def cmd_control(args: argparse.Namespace, client: Client) -> int:
    """cancel, pause, resume or retry one process."""
    action = args.process_command
    if action == "retry":
        client.processes.retry(args.id, args.from_step, timeout=args.timeout)
    else:
        act: dict[str, Callable[..., None]] = {
            "cancel": client.processes.cancel,
            "pause": client.processes.pause,
            "resume": client.processes.resume,
        }
        act[action](args.id, timeout=args.timeout)
    past = {"cancel": "cancel asked for", "pause": "pause asked for", "resume": "resumed",
            "retry": "queued again"}  # fmt: skip
    print(
        json.dumps({"process_id": args.id, "ok": True})
        if args.json
        else f"{args.id}: {past[action]}"
    )
    return 0


def cmd_stats(args: argparse.Namespace, client: Client) -> int:
    """Counts, success rate, durations and the bottleneck step."""
    try:
        window = parse_duration(args.window)
    except ValueError as error:
        raise ProcessUsageError(f"--window: {error}") from None
    stats = client.processes.stats(args.kind, window, timeout=args.timeout)
    if args.json:
        _print_json(stats)
        return 0
    console = Console()
    counts = ", ".join(f"{s} {n}" for s, n in stats["counts"].items() if n)
    rate = stats["success_rate"]
    console.print(f"kind: {stats['kind'] or 'all'}  window: {stats['window']:g}s")
    console.print(f"counts: {counts or 'none'}")
    console.print(f"success rate: {'-' if rate is None else f'{rate:.1%}'}  "
                  f"average {_seconds(stats['duration']['average'])}  "
                  f"p95 {_seconds(stats['duration']['p95'])}")  # fmt: skip
    table = Table("step", "count", "average", "fastest", "slowest")
    for name, step in stats["steps"].items():
        marker = " (bottleneck)" if name == stats["bottleneck"] else ""
        table.add_row(
            name + marker, str(step["count"]), _seconds(step["average"]),
            _seconds(step["fastest"]), _seconds(step["slowest"]),
        )  # fmt: skip
    console.print(table)
    return 0


def cmd_prune(args: argparse.Namespace, client: Client) -> int:
    """Delete finished processes older than --older-than."""
    try:
        older_than = parse_duration(args.older_than)
    except ValueError as error:
        raise ProcessUsageError(f"--older-than: {error}") from None
    deleted = client.processes.prune(older_than, args.status, timeout=args.timeout)
    print(json.dumps({"deleted": deleted}) if args.json else f"{deleted} pruned")
    return 0


def add_process_commands(commands: Any, add_client_options: Callable[..., None]) -> None:
    """``tierd process …`` and its subcommands."""
    process = commands.add_parser("process", help="submit, show, list, watch and control processes")
    sub = process.add_subparsers(dest="process_command", required=True, metavar="COMMAND")

    def command(name: str, text: str, *, with_id: bool = True) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, help=text)
        if with_id:
            parser.add_argument("id", help="the process id (as submit printed it)")
        parser.add_argument("--json", action="store_true", help="print JSON for scripts")
        add_client_options(parser, timeout=10.0)
        return parser

    submit = command("submit", "submit a process; print its id", with_id=False)
    submit.add_argument("kind", help="the process kind, as the runtime's config names it")
    submit.add_argument("payload", nargs="?", help="the params: JSON, @file or - (stdin)")
    submit.add_argument("--priority", default="normal", help="1..20 or a name (default normal)")
    submit.add_argument("--key", help="an idempotency key: the same key returns the same process")
    mode = submit.add_mutually_exclusive_group()
    mode.add_argument("--wait", action="store_true", help="wait and print the final status")
    mode.add_argument("--watch", action="store_true", help="live progress bars until it ends")
    submit.add_argument("--wait-timeout", type=float, default=None, help="seconds --wait waits")
    command("show", "the status of a process")
    listing = command("list", "processes, newest first", with_id=False)
    listing.add_argument("--status", help="pending, running, paused, completed, failed...")
    listing.add_argument("--kind", help="one kind")
    listing.add_argument("--since", help="submitted within this long, e.g. 2h or 30m")
    listing.add_argument("--until", help="submitted more than this long ago")
    listing.add_argument("--limit", type=int, default=50, help="page size (default 50)")
    listing.add_argument("--cursor", help="the next page, as the last one said")
    command("history", "the events of a process")
    items = command("items", "the items of a batch, by index")
    items.add_argument("--status", help="pending, running, completed, failed or skipped")
    items.add_argument("--limit", type=int, default=100, help="page size (default 100)")
    items.add_argument("--cursor", help="the next page, as the last one said")
    command("watch", "live progress bars per step until the process finishes")
    for name, text in (("cancel", "cancel a process"), ("pause", "pause a running process"),
                       ("resume", "resume a paused process")):  # fmt: skip
        command(name, text)
    retry = command("retry", "run a finished process again")
    retry.add_argument("--from-step", help="the step to start from (default: the first unfinished)")
    stats = command("stats", "counts, success rate, durations, the bottleneck step", with_id=False)
    stats.add_argument("--kind", help="one kind (default: all)")
    stats.add_argument("--window", default="24h", help="over this long (default 24h)")
    prune = command("prune", "delete finished processes", with_id=False)
    prune.add_argument("--older-than", required=True, help="finished longer ago than, e.g. 30d")
    prune.add_argument("--status", help="only this finished status")


PROCESS_COMMANDS: Final[dict[str, Callable[..., int]]] = {
    "show": cmd_show,
    "list": cmd_list,
    "history": cmd_history,
    "items": cmd_items,
    "watch": cmd_watch,
    "cancel": cmd_control,
    "pause": cmd_control,
    "resume": cmd_control,
    "retry": cmd_control,
    "stats": cmd_stats,
    "prune": cmd_prune,
}
"""Each subcommand but ``submit`` (which also takes the payload)."""


def run_process_command(args: argparse.Namespace, client: Client, payload: Any) -> int:
    """Run ``tierd process <command>`` with an open client; return the exit code."""
    if args.process_command == "submit":
        return cmd_submit(args, client, payload)
    return PROCESS_COMMANDS[args.process_command](args, client)


def stderr_line(text: str) -> None:
    """One line on standard error."""
    print(" ".join(text.split()), file=sys.stderr)


def _shortened(text: str, most: int) -> str:
    """``text``, or its first ``most`` characters and an ellipsis that says it was cut."""
    return text if len(text) <= most else text[: most - 1] + "…"
