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
) -> dict[str, Any]:
    """Describe a runtime.

    Args:
        name: the runtime's name.
        levels: a snapshot of every local level.
        rejected_frames: frames refused, by reason.
        peers: one dict per peer: ``endpoint``, ``levels``, ``up``, ``held``.

    Returns:
        ``{"name", "levels": [...], "peers": [...], "rejected_frames": {...}}``;
        each level has its counters, ``queue_depth`` by priority (string keys)
        and ``daemons`` with their state, queue and counters.
    """
    return {
        "name": name,
        "levels": [_level(level) for level in levels],
        "peers": peers,
        "rejected_frames": dict(rejected_frames),
    }


def _level(level: LevelStatistics) -> dict[str, Any]:
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
        "rejected": dict(level.rejected),
        "retries": level.retries,
        "waiting_for_room": level.waiting_for_room,
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
    lines = [f"runtime {status.get('name', '?')}"]
    rows = [("ADDRESS", "STATE", "QUEUED", "IN FLIGHT", "PROCESSED", "ERRORS", "RESTARTS")]
    for level in status.get("levels", []):
        lines.append(
            f"level {level['level']}: queued {level['queued']}, "
            f"in-flight requests {level['in_flight_requests']}, "
            f"processed {level['processed']}, timeouts {level['timeouts']}, "
            f"dead letters {sum(level['dead_letters'].values())}, "
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
