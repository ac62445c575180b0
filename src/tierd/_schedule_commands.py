"""``tierd schedules …``: list, pause, resume and run-now the runtime's schedules.

A table for people (rich; plain text when the output is not a terminal),
``--json`` for scripts. Exit codes as for every ``tierd`` command: 0 done; 1
the runtime failed (a timeout); 2 a user mistake (an unknown schedule name,
bad arguments); 130 Ctrl-C.
"""

from __future__ import annotations

import datetime
import json
import zoneinfo
from typing import TYPE_CHECKING, Any, Final

from rich.console import Console
from rich.table import Column, Table

from .errors import ScheduleNotFound

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    from .messaging._transport.client import Client

SCHEDULE_MISTAKES: Final[tuple[type[Exception], ...]] = (ScheduleNotFound,)
"""Errors from the runtime that are the user's to fix: exit 2, not 1."""


def _when(epoch: float | None, timezone: str) -> str:
    if epoch is None:
        return "-"
    moment = datetime.datetime.fromtimestamp(epoch, zoneinfo.ZoneInfo(timezone))
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z")


def _trigger(schedule: dict[str, Any]) -> str:
    if schedule["cron"] is not None:
        return f"cron {schedule['cron']}\n{schedule['timezone']}"
    return f"every {schedule['every']:g}s"


def _last(schedule: dict[str, Any]) -> str:
    fire = schedule["last_fire"]
    if fire is None:
        return "-"
    manual = " (run-now)" if fire["manual"] else ""
    return f"{_when(fire['fire_time'], 'UTC')}\n{fire['outcome']}{manual}"


def cmd_list(args: argparse.Namespace, client: Client) -> int:
    """Every schedule, with its next fire in its own timezone and in UTC."""
    schedules = client.schedules.list(timeout=args.timeout)
    if args.json:
        print(json.dumps(schedules, indent=2))
        return 0
    console = Console()
    if not schedules:
        console.print("no schedules: add [[schedules]] tables to the runtime's config")
        return 0
    table = Table(Column("name", no_wrap=True), "when", "fires", "next fire",
                  "last fire", "paused")  # fmt: skip
    for schedule in schedules:
        fires = f"process {schedule['process']}" if schedule["process"] else schedule["target"]
        next_fire = schedule["next_fire"]
        table.add_row(
            schedule["name"], _trigger(schedule), fires,
            f"{_when(next_fire, schedule['timezone'])}\n{_when(next_fire, 'UTC')}",
            _last(schedule), "yes" if schedule["paused"] else "no",
        )  # fmt: skip
    console.print(table)
    return 0


def cmd_control(args: argparse.Namespace, client: Client) -> int:
    """Pause or resume a schedule, or fire it once now."""
    act: dict[str, Callable[..., dict[str, Any]]] = {
        "pause": client.schedules.pause,
        "resume": client.schedules.resume,
        "run-now": client.schedules.run_now,
    }
    answer = act[args.schedules_command](args.name, timeout=args.timeout)
    if args.json:
        print(json.dumps(answer, indent=2))
        return 0
    if args.schedules_command == "run-now":
        made = answer["process_id"] or answer["message_id"]
        detail = f" ({answer['detail']})" if answer["detail"] else ""
        print(f"{args.name}: {answer['outcome']} {made or ''}{detail}".rstrip())
        return 0 if answer["outcome"] == "fired" else 1
    state = "paused" if answer["paused"] else "resumed"
    print(f"{args.name}: {state}; next fire {_when(answer['next_fire'], answer['timezone'])}")
    return 0


def add_schedule_commands(commands: Any, add_client_options: Callable[..., None]) -> None:
    """``tierd schedules …`` and its subcommands."""
    schedules = commands.add_parser("schedules", help="list, pause, resume and run-now schedules")
    sub = schedules.add_subparsers(dest="schedules_command", required=True, metavar="COMMAND")

    def command(name: str, text: str, *, with_name: bool = True) -> None:
        parser: argparse.ArgumentParser = sub.add_parser(name, help=text)
        if with_name:
            parser.add_argument("name", help="the schedule's name, as the config gives it")
        parser.add_argument("--json", action="store_true", help="print JSON for scripts")
        add_client_options(parser, timeout=10.0)

    command("list", "every schedule: when, timezone, next and last fire, paused", with_name=False)
    command("pause", "pause a schedule (for every runtime sharing its store)")
    command("resume", "resume a paused schedule from its next fire")
    command("run-now", "fire a schedule once now")


def run_schedule_command(args: argparse.Namespace, client: Client) -> int:
    """Run ``tierd schedules <command>`` with an open client; return the exit code."""
    if args.schedules_command == "list":
        return cmd_list(args, client)
    return cmd_control(args, client)
