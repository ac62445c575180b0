"""Schedules as pure decisions: when each one fires, which fires are due, what overlap says.

A schedule fires on a `Cron` expression read in an IANA timezone (parsed by
cronsim, which also decides what a fire time that a DST change skips or
repeats becomes) or on an `Every` interval. Fire times are epoch seconds
that every runtime computes alike from the schedule alone (an interval is
counted from the epoch, not from when a runtime started), so that the
store's unique (schedule, fire time) key makes a fire run once however many
runtimes share the store.

`Scheduler` holds, for each schedule, the fire time it has considered last
(its cursor) and answers `Scheduler.due` for a given now: it never reads a
clock, sleeps or fires anything; `tierd.processes._schedule_driver` does.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import zoneinfo
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from cronsim import CronSim, CronSimError

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping

Overlap = Literal["skip", "queue", "allow"]
"""What a fire does while the schedule's previous run is unfinished."""
OVERLAPS: Final[tuple[Overlap, ...]] = ("skip", "queue", "allow")
MAX_DUE: Final = 1000
"""The most fires of one schedule that one `Scheduler.due` call returns (a long catch-up)."""


class Trigger(Protocol):
    """When a schedule fires."""

    def next_after(self, after: float) -> float:
        """The first fire time strictly after ``after`` (epoch seconds)."""

    def describe(self) -> str:
        """The trigger as the config writes it, for listings: ``cron 0 * * * *``, ``every 60s``."""


@dataclasses.dataclass(frozen=True, slots=True)
class Cron:
    """A five-field cron expression read in ``timezone`` (cronsim decides every match).

    On a day a DST change skips the local time (02:30 in Europe/Paris on the
    last Sunday of March), cronsim fires at the first moment after the gap
    (03:00); on a day the local time comes twice, an hour-and-minute fire
    runs once, at its first occurrence, while a ``*`` hour field matches both.

    Raises:
        ValueError: a bad expression, or an unknown timezone.
    """

    expression: str
    timezone: str = "UTC"
    _zone: zoneinfo.ZoneInfo = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_zone", zone(self.timezone))
        try:
            CronSim(self.expression, datetime.datetime.now(self._zone))
        except CronSimError as error:
            raise ValueError(f"bad cron expression {self.expression!r}: {error}") from None

    def next_after(self, after: float) -> float:
        """The first match strictly after ``after``, as epoch seconds."""
        start = datetime.datetime.fromtimestamp(after, self._zone)
        return next(CronSim(self.expression, start)).timestamp()

    def describe(self) -> str:
        """``cron <expression>``."""
        return f"cron {self.expression}"


@dataclasses.dataclass(frozen=True, slots=True)
class Every:
    """Every ``seconds``, at the whole multiples of it counted from the epoch (UTC).

    ``every = 60`` fires at each minute's start; ``every = 90`` at 00:00:00,
    00:01:30, 00:03:00... (UTC): the same instants in every runtime.
    """

    seconds: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.seconds) and self.seconds > 0):
            raise ValueError(f"every must be a positive number of seconds, not {self.seconds!r}")

    def next_after(self, after: float) -> float:
        """The first multiple of ``seconds`` strictly after ``after``."""
        fire = (math.floor(after / self.seconds) + 1) * self.seconds
        return fire if fire > after else fire + self.seconds

    def describe(self) -> str:
        """``every <seconds>s``."""
        return f"every {self.seconds:g}s"


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA timezone ``name``.

    Raises:
        ValueError: no such timezone.
    """
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(
            f"unknown timezone {name!r}: use an IANA name such as 'Europe/Paris'"
        ) from None


@dataclasses.dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """One schedule: when it fires and what a fire does."""

    name: str
    trigger: Cron | Every
    process: str | None = None
    """The process kind a fire submits; or None, and `target` is set."""
    target: str | None = None
    """The daemon (``daemon@level``) a fire sends a notification to; or None."""
    params: Any = None
    """The process's params, or the notification's payload."""
    overlap: Overlap = "skip"
    catch_up: float = 0.0
    """Seconds of missed fires run after downtime; 0: none (only the next fire)."""

    @property
    def timezone(self) -> str:
        """The timezone the cron is read in (UTC for an interval)."""
        return self.trigger.timezone if isinstance(self.trigger, Cron) else "UTC"

    @property
    def what(self) -> str:
        """What a fire does: ``process <kind>`` or ``message <daemon@level>``."""
        return f"process {self.process}" if self.process else f"message {self.target}"


@dataclasses.dataclass(frozen=True, slots=True)
class Fire:
    """One fire that is due: the schedule and its fire time (the store's key)."""

    schedule: str
    fire_at: float


class Scheduler:
    """Which fires are due, given the schedules, their last fires and now.

    It keeps each schedule's cursor (the last fire time it has handed out or
    let pass) and the next fire time after it, so that asking costs nothing
    until a fire is due.

    Args:
        specs: the schedules.
    """

    def __init__(self, specs: Iterable[ScheduleSpec]) -> None:
        self.specs: dict[str, ScheduleSpec] = {spec.name: spec for spec in specs}
        self._cursors: dict[str, float] = {}
        self._next: dict[str, float] = {}

    def start(self, now: float, last_fires: Mapping[str, float]) -> None:
        """Set each schedule's cursor: after its last fire, but no further back than ``catch_up``.

        A schedule that never fired (no runtime ran it yet) starts at ``now``:
        there was no downtime to catch up on.

        Args:
            now: epoch seconds.
            last_fires: each schedule's latest recorded fire time (of any runtime).
        """
        for name, spec in self.specs.items():
            last = last_fires.get(name)
            self._move(name, now if last is None else max(last, now - spec.catch_up))

    def _move(self, name: str, cursor: float) -> None:
        self._cursors[name] = cursor
        self._next[name] = self.specs[name].trigger.next_after(cursor)

    def next_due(self) -> float:
        """The earliest next fire time of any schedule (infinity if there is none)."""
        return min(self._next.values(), default=math.inf)

    def due(self, now: float, paused: Collection[str] = ()) -> list[Fire]:
        """The fires in (cursor, now] of each schedule, oldest first; moves the cursors on.

        A paused schedule's fires pass without being returned. At most
        `MAX_DUE` fires of one schedule are returned; the rest come next call.
        """
        fires: list[Fire] = []
        for name in self.specs:
            if name not in self._next:
                self._move(name, now)
            mine: list[Fire] = []
            while self._next[name] <= now and len(mine) < MAX_DUE:
                mine.append(Fire(name, self._next[name]))
                self._move(name, self._next[name])
            if name not in paused:
                fires.extend(mine)
        fires.sort(key=lambda fire: fire.fire_at)
        return fires

    def next_fire(self, name: str) -> float:
        """The schedule's next fire time (epoch seconds)."""
        return self._next[name]

    def resume(self, name: str, now: float) -> None:
        """Start a resumed schedule from ``now``: the fires it missed while paused stay missed."""
        self._move(name, max(now, self._cursors.get(name, now)))


Decision = Literal["fire", "skip", "hold"]
"""`decide_overlap`'s answer: fire now, record as skipped, or hold until the last run ends."""


def decide_overlap(overlap: Overlap, *, previous_unfinished: bool, holding: bool) -> Decision:
    """What a fire does, by the schedule's ``overlap`` and its previous run.

    Args:
        overlap: ``skip``, ``queue`` or ``allow``.
        previous_unfinished: the process the schedule started last is pending,
            running or paused.
        holding: a fire of this schedule is held already (``queue``).

    Returns:
        ``fire`` (submit now), ``skip`` (record it skipped), or ``hold``
        (``queue``: submit it once the previous run has finished; at most one
        fire is held, a further one is skipped).
    """
    if overlap == "allow" or not (previous_unfinished or holding):
        return "fire"
    if overlap == "queue" and not holding:
        return "hold"
    return "skip"
