"""The runtime's status as plain data, and as the table ``tierd status`` prints.

`status_report` turns statistics snapshots into msgpack- and JSON-able
data (string keys only), so that the same dict crosses the wire to
`Client.status` and feeds ``tierd status --json``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .orchestrators._stats import LevelStatistics


def status_report(
    name: str,
    levels: list[LevelStatistics],
    rejected_frames: dict[str, int],
    peers: list[dict[str, Any]],
    *,
    version: str = "",
    endpoint: str = "",
    events: str = "",
    uptime: float = 0.0,
    dead_letters_kept: dict[int, int] | None = None,
) -> dict[str, Any]:
    """Describe a runtime.

    Args:
        name: the runtime's name.
        levels: a snapshot of every local level.
        rejected_frames: frames refused, by reason.
        peers: one dict per peer: ``endpoint``, ``levels``, ``up``, ``held``.
        version: tierd's version.
        endpoint: the runtime's ``runtime.endpoint``.
        events: where the runtime publishes live events (its bound address); "" if nowhere.
        uptime: seconds since the runtime started.
        dead_letters_kept: each level's dead letters now (after purges and replays).

    Returns:
        ``{"name", "version", "endpoint", "events", "uptime", "levels": [...], "peers": [...],
        "rejected_frames": {...}}``; each level has its counters (``dead_letters``:
        every dead letter ever, by reason; ``dead_letters_kept``: those kept
        now), ``queue_depth`` by priority (string keys) and ``daemons`` with
        their state, queue and counters.
    """
    kept = dead_letters_kept or {}
    return {
        "name": name,
        "version": version,
        "endpoint": endpoint,
        "events": events,
        "uptime": uptime,
        "levels": [_level(level, kept.get(level.level, 0)) for level in levels],
        "peers": peers,
        "rejected_frames": dict(rejected_frames),
    }


def _level(level: LevelStatistics, dead_letters_kept: int) -> dict[str, Any]:
    return {
        "level": level.level,
        "queued": level.queued,
        "queue_depth": {str(priority): n for priority, n in sorted(level.queue_depth.items())},
        "in_flight_requests": level.in_flight_requests,
        "received": sum(level.received.values()),
        "dispatched": level.dispatched,
        "processed": level.processed,
        "completed": dict(level.completed),
        "timeouts": level.timeouts,
        "late_replies": level.late_replies,
        "dead_letters": dict(level.dead_letters),
        "dead_letters_kept": dead_letters_kept,
        "rejected": dict(level.rejected),
        "retries": level.retries,
        "waiting_for_room": level.waiting_for_room,
        "delayed": level.delayed,
        "daemons": [
            {
                "daemon": daemon.daemon,
                "class": daemon.daemon_class,
                "state": daemon.state,
                "paused": daemon.paused,
                "given_up": daemon.given_up,
                "queued": daemon.queued,
                "in_flight": daemon.in_flight,
                "processed": daemon.processed,
                "errors": daemon.errors,
                "restarts": daemon.restarts,
            }
            for daemon in level.daemons
        ],
    }


def format_status(status: dict[str, Any]) -> str:
    """Render a `status_report` dict as a readable table."""
    lines = [_heading(status)]
    rows = [("ADDRESS", "STATE", "QUEUED", "IN FLIGHT", "PROCESSED", "ERRORS", "RESTARTS")]
    for level in status.get("levels", []):
        lines.append(
            f"level {level['level']}: queued {level['queued']}, "
            + (f"delayed {level['delayed']}, " if level.get("delayed") else "")
            + f"in-flight requests {level['in_flight_requests']}, "
            f"processed {level['processed']}, timeouts {level['timeouts']}, "
            f"dead letters {level.get('dead_letters_kept', '?')}, "
            f"rejected {sum(level.get('rejected', {}).values())}"
        )
        for daemon in level["daemons"]:
            state = daemon["state"] + (" (paused)" if daemon["paused"] else "")
            state += " (given up)" if daemon["given_up"] else ""
            rows.append((
                f"{daemon['daemon']}@{level['level']}", state, str(daemon["queued"]),
                str(daemon["in_flight"]), str(daemon["processed"]), str(daemon["errors"]),
                str(daemon["restarts"]),
            ))  # fmt: skip
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines.append("")
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        lines.append("  ".join(cells).rstrip())
    for peer in status.get("peers", []):
        levels = ", ".join(str(level) for level in peer["levels"])
        state = "up" if peer["up"] else "DOWN"
        lines.append(f"peer {peer['endpoint']} (levels {levels}): {state}, held {peer['held']}")
    rejected = status.get("rejected_frames") or {}
    if rejected:
        counts = ", ".join(f"{reason} {n}" for reason, n in sorted(rejected.items()))
        lines.append(f"rejected frames: {counts}")
    return "\n".join(lines)


def _heading(status: dict[str, Any]) -> str:
    """``runtime NAME (tierd VERSION) at ENDPOINT, events at E, up 1h02m``, what the report has."""
    line = f"runtime {status.get('name', '?')}"
    if status.get("version"):
        line += f" (tierd {status['version']})"
    if status.get("endpoint"):
        line += f" at {status['endpoint']}"
    if status.get("events"):
        line += f", events at {status['events']}"
    uptime = status.get("uptime")
    if isinstance(uptime, int | float):
        line += f", up {format_duration(uptime)}"
    return line


def format_duration(seconds: float) -> str:
    """``45s``, ``3m05s``, ``2h03m``, ``4d02h``: a duration at a glance."""
    whole = int(max(seconds, 0))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
