"""Counters a level keeps, and the frozen snapshots it hands out.

The counters are written only under the level's lock, by whichever thread
holds it, so they are plain ints with no lock of their own; `tierd status`
and the Prometheus collector read snapshots the level takes under its lock.
"""

from __future__ import annotations

import bisect
import dataclasses
from typing import Final

LATENCY_BUCKETS: Final = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip
"""Histogram bounds in seconds: sub-millisecond dispatch up to minutes of handling."""


class Histogram:
    """A cumulative-at-read histogram; its owner serialises the writes."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        """Count one observation."""
        self.counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.sum += seconds

    def snapshot(self) -> HistogramSnapshot:
        """A frozen copy of the counts."""
        return HistogramSnapshot(tuple(self.counts), self.sum)


@dataclasses.dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    """Observations per bucket of `LATENCY_BUCKETS` (the last is +Inf), not cumulative."""

    counts: tuple[int, ...]
    """How many observations fell at or under each bound and above the previous one."""
    sum: float
    """The sum of every observation, in seconds."""

    @property
    def count(self) -> int:
        """How many observations in all."""
        return sum(self.counts)


@dataclasses.dataclass(frozen=True, slots=True)
class DaemonStatistics:
    """One daemon, as its orchestrator sees it."""

    daemon: str
    """The daemon's id; ``id#index`` for one instance of a daemon with ``instances > 1``."""
    daemon_class: str
    """``module:Class`` of its handler."""
    state: str
    """``IDLE``, ``WORKING``, ``BLOCKED`` or ``ERROR``."""
    paused: bool
    """True while it is paused: it receives nothing."""
    given_up: bool
    """True once it crashed more often than its restart policy allows."""
    queued: int
    """Messages waiting for it."""
    in_flight: int
    """Messages handed to it and not yet handled."""
    processed: int
    """Messages it handled without raising."""
    errors: int
    """Messages whose handling raised."""
    restarts: int
    """Times it was restarted."""
    handle_duration: HistogramSnapshot
    """How long its handler took per message."""


@dataclasses.dataclass(frozen=True, slots=True)
class LevelStatistics:
    """One level: its queue, its counters and its daemons."""

    level: int
    """The level number."""
    received: dict[tuple[str, int], int]
    """Messages accepted for this level, by (kind, priority)."""
    dispatched: int
    """Messages handed to a daemon."""
    completed: dict[str, int]
    """Requests finished, by outcome: ``ok``, ``error``, ``timeout``."""
    processed: int
    """Messages handled without raising, any kind."""
    timeouts: int
    """Requests from this level that got no reply in time, and queued messages that expired."""
    late_replies: int
    """Replies dropped because their request had already timed out."""
    dead_letters: dict[str, int]
    """Messages that could not be delivered, by reason."""
    queue_depth: dict[int, int]
    """Messages waiting, by priority."""
    in_flight_requests: int
    """Requests made from this level still waiting for their reply."""
    dispatch_latency: HistogramSnapshot
    """Seconds from queued to handed to a daemon."""
    daemons: tuple[DaemonStatistics, ...]
    """Every daemon of the level, in config order."""
    rejected: dict[str, int] = dataclasses.field(default_factory=dict)
    """Messages refused when they arrived, by reason (``queue_full``); never dead-lettered."""
    retries: int = 0
    """Failed deliveries scheduled for another attempt by a retry policy."""
    waiting_for_room: int = 0
    """Senders waiting for room in the full queue right now."""
    dead_letters_kept: int = 0
    """Dead letters the level holds now (purged and replayed ones are gone)."""
    queue_limit: int | None = None
    """The most messages the level queues (its configured ``queue_limit``); None for no limit."""
    delayed: int = 0
    """Messages accepted with a ``not_before`` still to come: held, not yet queued."""

    @property
    def queued(self) -> int:
        """Messages waiting, all priorities."""
        return sum(self.queue_depth.values())


class LevelCounters:
    """The mutable counters behind `LevelStatistics`, written under the level's lock."""

    def __init__(self) -> None:
        self.received: dict[tuple[str, int], int] = {}
        self.dispatched = 0
        self.completed: dict[str, int] = {"ok": 0, "error": 0, "timeout": 0}
        self.processed = 0
        self.timeouts = 0
        self.late_replies = 0
        self.rejected: dict[str, int] = {}
        self.retries = 0
        self.dispatch_latency = Histogram()

    def count_received(self, kind: str, priority: int) -> None:
        """Count one message accepted for the level."""
        key = (kind, priority)
        self.received[key] = self.received.get(key, 0) + 1

    def count_rejected(self, reason: str) -> None:
        """Count one message refused on arrival."""
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
