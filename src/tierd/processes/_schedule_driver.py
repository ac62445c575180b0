"""`ScheduleDriver`: fires a runtime's schedules on time, each fire once across runtimes.

The runtime's sweeper calls `ScheduleDriver.tick`; it asks the `Scheduler`
which fires are due (nothing, most ticks: the scheduler knows its next fire
time), claims each one in the process store under its (schedule, fire time)
key (`ProcessStore.claim_fire`: the runtime whose insert wins fires, the
others skip it), decides the overlap (`decide_overlap`), then submits the
process or sends the notification and records the outcome. Each outcome
is counted for ``tierd_schedule_fires_total`` and published as a
``schedule_fired`` event on ``schedule.<name>``.

Time comes from a `Clock` (epoch seconds): a test advances a
`tierd.testing.FakeClock` and calls `tick`.
"""

from __future__ import annotations

import builtins  # noqa: TC003 - `list` is a method name here; annotations need the type
import collections
import dataclasses
import datetime
import itertools
import math
import threading
from typing import TYPE_CHECKING, Any, Final

from .._clock import SYSTEM_CLOCK
from ..errors import ProcessNotFound, ScheduleNotFound
from ..logging import get_logger
from ..messaging.events import NO_EVENTS
from ._lifecycle import UNFINISHED
from ._schedules import Cron, Scheduler, decide_overlap, zone
from ._store import ScheduleFire

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from .._clock import Clock
    from ..messaging.events import EventSink
    from ._runner import ProcessRunner
    from ._schedules import ScheduleSpec
    from ._store import ProcessStore

FINAL_OUTCOMES: Final = ("fired", "skipped", "failed")
"""The outcomes counted by ``tierd_schedule_fires_total`` (a held fire counts once it fires)."""
_RECENT: Final = 50
"""Recorded fires read at start to find a schedule's last scheduled (not run-now) fire."""
PRUNE_EVERY: Final = 3600.0
"""Seconds between two deletions of fires older than ``keep_fires``."""
PRUNE_BATCH: Final = 1000


class ScheduleDriver:
    """Fires the schedules of one runtime; `tierd.Runtime.schedules` is one. Thread-safe.

    One lock serialises every fire (the sweeper's ticks and `run_now`), so a
    schedule's overlap is decided on what its previous fire did.

    Args:
        specs: the schedules.
        store: where fires and paused states are kept (shared by the runtimes that share it).
        runner: where process fires are submitted; None if the runtime runs no processes.
        send: sends a notification (``target``, ``payload``) and returns its id: `Runtime.send`.
        clock: the time; `tierd.testing.FakeClock` in tests.
        events: where each ``schedule_fired`` event goes.
        owner: the runtime's name, for logs.
        keep_fires: seconds a fire is kept in the store (each schedule's latest is always kept).
    """

    def __init__(
        self,
        specs: Iterable[ScheduleSpec],
        store: ProcessStore,
        *,
        runner: ProcessRunner | None,
        send: Callable[[str, Any], str],
        clock: Clock = SYSTEM_CLOCK,
        events: EventSink = NO_EVENTS,
        owner: str = "tierd",
        keep_fires: float = 90 * 86400.0,
    ) -> None:
        self.scheduler = Scheduler(specs)
        self.specs = self.scheduler.specs
        self.store = store
        self.runner = runner
        self.send = send
        self.clock = clock
        self.events = events
        self.log = get_logger(runtime=owner, component="schedules")
        self._lock = threading.RLock()
        self._held: dict[str, float] = {}
        """The fire each ``queue`` schedule holds until its last run ends: its fire time."""
        self._counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self._seq: dict[str, itertools.count[int]] = {
            name: itertools.count(1) for name in self.specs
        }
        self.keep_fires = keep_fires
        self._next_prune = -math.inf
        self._started = False

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Set each schedule's cursor from its last recorded fire (see `Scheduler.start`)."""
        with self._lock:
            last: dict[str, float] = {}
            for name in self.specs:
                scheduled = [f for f in self.store.fires(name, limit=_RECENT) if not f.manual]
                if scheduled:
                    last[name] = scheduled[0].fire_at
            self.scheduler.start(self.clock.time(), last)
            self._started = True

    def stop(self) -> None:
        """Record the fires still held as skipped: no runtime will submit them."""
        with self._lock:
            for name, fire_at in list(self._held.items()):
                self._finish(name, fire_at, "skipped", detail="the runtime stopped while it waited")
            self._held.clear()
            self._started = False

    def tick(self) -> None:
        """Fire whatever is due now, and the held fires whose last run has ended."""
        now = self.clock.time()
        with self._lock:
            if not self._started:
                return
            if self._held:
                self._release_held()
            if now >= self._next_prune:
                self._next_prune = now + PRUNE_EVERY
                self._prune(now)
            if self.scheduler.next_due() > now:
                return
            paused = self.store.paused_schedules()
            for fire in self.scheduler.due(now, paused):
                try:
                    self._fire(self.specs[fire.schedule], fire.fire_at, manual=False)
                except Exception:  # the store failed: this fire is lost, the next ones are tried
                    self.log.exception("schedule_fire_lost", schedule=fire.schedule,
                                       fire_at=fire.fire_at)  # fmt: skip

    # -- entry points ------------------------------------------------------------

    def list(self) -> builtins.list[dict[str, Any]]:
        """Every schedule: trigger, timezone, target, next fire, last fire and outcome, paused."""
        with self._lock:
            paused = self.store.paused_schedules()
            return [self._document(spec, paused) for spec in self.specs.values()]

    def pause(self, name: str) -> dict[str, Any]:
        """Pause a schedule for every runtime sharing the store; it stays paused across restarts.

        Returns:
            The schedule's document.

        Raises:
            ScheduleNotFound: no schedule has this name.
        """
        spec = self._spec(name)
        with self._lock:
            self.store.set_schedule_paused(name, self.clock.time(), paused=True)
            self.log.info("schedule_paused", schedule=name)
            return self._document(spec, self.store.paused_schedules())

    def resume(self, name: str) -> dict[str, Any]:
        """Resume a paused schedule from its next fire on (the fires missed meanwhile stay missed).

        Raises:
            ScheduleNotFound: no schedule has this name.
        """
        spec = self._spec(name)
        with self._lock:
            now = self.clock.time()
            self.store.set_schedule_paused(name, now, paused=False)
            self.scheduler.resume(name, now)
            self.log.info("schedule_resumed", schedule=name)
            return self._document(spec, self.store.paused_schedules())

    def run_now(self, name: str) -> dict[str, Any]:
        """Fire a schedule once now, whatever its overlap and even if paused.

        The fire is recorded under its own key (the schedule and now), so it
        never takes the place of a scheduled fire.

        Returns:
            The fire: ``schedule``, ``fire_time``, ``outcome``, ``process_id`` or
            ``message_id``, ``detail``.

        Raises:
            ScheduleNotFound: no schedule has this name.
        """
        spec = self._spec(name)
        with self._lock:
            fire_at = self.clock.time()
            while not self.store.claim_fire(name, fire_at, fire_at, manual=True):
                fire_at = math.nextafter(fire_at, math.inf)  # a fire at this very instant
            fire = self._run(spec, fire_at, overlap="allow")
            return _fire_document(dataclasses.replace(fire, manual=True))

    def statistics(self) -> dict[tuple[str, str], int]:
        """Fires since the runtime started, by (schedule, outcome); every pair, zeros too."""
        with self._lock:
            return {
                (name, outcome): self._counts[(name, outcome)]
                for name in self.specs
                for outcome in FINAL_OUTCOMES
            }

    # -- firing --------------------------------------------------------------------

    def _prune(self, now: float) -> None:
        """Delete one batch of the fires recorded over ``keep_fires`` ago."""
        deleted = self.store.prune_fires(now - self.keep_fires, PRUNE_BATCH)
        if deleted:
            self.log.info("schedule_fires_pruned", count=deleted)
        if deleted == PRUNE_BATCH:
            self._next_prune = now  # more to delete: another batch next tick

    def _spec(self, name: str) -> ScheduleSpec:
        spec = self.specs.get(name) if isinstance(name, str) else None
        if spec is None:
            raise ScheduleNotFound(str(name)[:200])
        return spec

    def _fire(self, spec: ScheduleSpec, fire_at: float, *, manual: bool) -> None:
        if not self.store.claim_fire(spec.name, fire_at, self.clock.time(), manual=manual):
            self.log.debug("schedule_fire_taken", schedule=spec.name, fire_at=fire_at)
            return  # another runtime sharing the store claimed it first
        self._run(spec, fire_at, overlap=spec.overlap)

    def _run(self, spec: ScheduleSpec, fire_at: float, *, overlap: str) -> ScheduleFire:
        """Run a claimed fire as its overlap decides; return it as recorded."""
        if spec.process is not None and overlap != "allow":
            previous = self._unfinished_run(spec.name)
            decision = decide_overlap(
                spec.overlap,
                previous_unfinished=previous is not None,
                holding=spec.name in self._held,
            )
            if decision == "skip":
                why = f"last run {previous} is unfinished" if previous else "a fire waits already"
                return self._finish(spec.name, fire_at, "skipped", detail=why)
            if decision == "hold":
                self._held[spec.name] = fire_at
                return self._record(spec.name, fire_at, "queued", detail=f"waits for {previous}")
        return self._submit(spec, fire_at)

    def _submit(self, spec: ScheduleSpec, fire_at: float) -> ScheduleFire:
        try:
            if spec.process is not None:
                if self.runner is None:
                    raise RuntimeError("this runtime runs no processes")  # config refuses it
                process_id = self.runner.submit(spec.process, spec.params)
                return self._finish(spec.name, fire_at, "fired", process_id=process_id)
            assert spec.target is not None
            message_id = self.send(spec.target, spec.params)
            return self._finish(spec.name, fire_at, "fired", message_id=message_id)
        except Exception as error:  # noqa: BLE001 - a refusal (or the kind's own check) fails the fire
            detail = f"{type(error).__name__}: {' '.join(str(error).split())}"[:500]
            return self._finish(spec.name, fire_at, "failed", detail=detail)

    def _unfinished_run(self, name: str) -> str | None:
        """The process this schedule fired last, if it is still pending, running or paused."""
        last = self.store.fires(name, limit=1, outcome="fired")
        process_id = last[0].process_id if last else None
        if process_id is None:
            return None
        if self.runner is not None:
            try:  # the runner's view: its own transitions count once they are committed
                status = self.runner.get(process_id)["status"]
            except ProcessNotFound:  # pruned
                return None
        else:
            record = self.store.get(process_id)
            status = record.status if record is not None else "completed"
        return process_id if status in UNFINISHED else None

    def _release_held(self) -> None:
        for name, fire_at in list(self._held.items()):
            if self._unfinished_run(name) is None:
                del self._held[name]
                self._submit(self.specs[name], fire_at)

    def _record(
        self,
        name: str,
        fire_at: float,
        outcome: str,
        *,
        process_id: str | None = None,
        message_id: str | None = None,
        detail: str | None = None,
    ) -> ScheduleFire:
        now = self.clock.time()
        self.store.finish_fire(
            name, fire_at, outcome, now,
            process_id=process_id, message_id=message_id, detail=detail,
        )  # fmt: skip
        return ScheduleFire(name, fire_at, outcome, now, process_id, message_id, detail)

    def _finish(
        self,
        name: str,
        fire_at: float,
        outcome: str,
        *,
        process_id: str | None = None,
        message_id: str | None = None,
        detail: str | None = None,
    ) -> ScheduleFire:
        """Record a fire's final outcome, count it, log it and publish its event."""
        fire = self._record(
            name, fire_at, outcome, process_id=process_id, message_id=message_id, detail=detail
        )
        self._counts[(name, outcome)] += 1
        ids = {"process_id": process_id, "message_id": message_id, "detail": detail}
        ids = {key: value for key, value in ids.items() if value is not None}
        log = self.log.warning if outcome == "failed" else self.log.info
        log("schedule_fired", schedule=name, fire_at=fire_at, outcome=outcome, **ids)
        event: dict[str, Any] = {
            "type": "schedule_fired", "topic": f"schedule.{name}", "at": fire.recorded_at,
            "seq": next(self._seq[name]), "schedule": name, "fire_time": fire_at,
            "outcome": outcome, **ids,
        }  # fmt: skip
        self.events.publish(f"schedule.{name}", event)
        return fire

    def _document(self, spec: ScheduleSpec, paused: set[str]) -> dict[str, Any]:
        trigger = spec.trigger
        next_at = self.scheduler.next_fire(spec.name)
        fires = self.store.fires(spec.name, limit=1)
        return {
            "name": spec.name,
            "cron": trigger.expression if isinstance(trigger, Cron) else None,
            "every": None if isinstance(trigger, Cron) else trigger.seconds,
            "timezone": spec.timezone,
            "process": spec.process,
            "target": spec.target,
            "overlap": spec.overlap,
            "catch_up": spec.catch_up,
            "paused": spec.name in paused,
            "next_fire": next_at,
            "next_fire_local": _iso(next_at, spec.timezone),
            "next_fire_utc": _iso(next_at, "UTC"),
            "last_fire": _fire_document(fires[0]) if fires else None,
        }


def _fire_document(fire: ScheduleFire) -> dict[str, Any]:
    return {
        "schedule": fire.schedule,
        "fire_time": fire.fire_at,
        "outcome": fire.outcome,
        "process_id": fire.process_id,
        "message_id": fire.message_id,
        "detail": fire.detail,
        "manual": fire.manual,
        "recorded_at": fire.recorded_at,
    }


def _iso(epoch: float, timezone: str) -> str:
    return datetime.datetime.fromtimestamp(epoch, zone(timezone)).isoformat(timespec="seconds")
