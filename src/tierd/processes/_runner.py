"""`ProcessRunner`: the one owner of every process this runtime runs, and every entry point.

The runner holds one lock over its state: the processes it runs (`_Run`, one
per process that is running or paused here), the admission counts per kind,
the waiters and the counters. Step attempts run outside the lock, each in its
own thread (a `StepExecutor`); they come back through `step_beat`,
`step_checkpoint` and `_attempt_finished`. The policies are components that
decide and never call back: `decide_step_retry` and `overdue`
(`_decisions`), the lifecycle tables (`_lifecycle`), and the `ProcessStore`.

Every transition is queued to the store as it is decided, under the lock,
so the store sees them in order; nothing acts on one (the next step's body,
a waiter, a reader) before its commit: a step's thread waits for the commit
of its ``step_started`` before it runs, `get` waits for the store's barrier
before it answers, waiters are woken by the commit of the final status.

Time comes from a `Clock`: step timeouts, heartbeats, ``stuck_after``,
retry backoffs and the process timeout are all checked by `sweep`, which
the runtime calls every ``sweep_interval`` and a test calls after moving a
`tierd.testing.FakeClock`.
"""

from __future__ import annotations

import builtins  # noqa: TC003 - `list` is a method name here; annotations need the type
import collections
import functools
import itertools
import statistics as stats_math
import threading
import time
from typing import TYPE_CHECKING, Any, Final

import msgpack

from .._clock import SYSTEM_CLOCK
from .._outcome import Outcome
from ..errors import Cancelled, ProcessFailed, ProcessNotFound, Rejected, RequestTimeout
from ..logging import get_logger
from ..messaging.events import NO_EVENTS
from ..messaging.message import MAX_PRIORITY, MIN_PRIORITY, parse_priority
from ._batch import ITEMS_STEP, MAX_LISTED_FAILURES, BatchPlan, ItemTimeout, batch_fields
from ._context import StepContext
from ._decisions import HeartbeatLost, Interrupted, StepTimeout, decide_step_retry, overdue
from ._executor import ThreadExecutor
from ._lifecycle import STATUSES, TERMINAL, check_transition
from ._record import (
    CORRELATION_KEYS,
    ITEM_STATUSES,
    ItemRecord,
    ProcessRecord,
    StepRecord,
    error_entry,
    new_process_id,
)
from ._stats import ProcessCounters, ProcessStatistics

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    import structlog

    from .._clock import Clock
    from ..messaging.events import EventSink
    from ._batch import Feed
    from ._context import Requester
    from ._definition import Definition, StepSpec
    from ._executor import StepExecutor
    from ._store import ProcessStore

DEFAULT_STUCK_AFTER: Final = 600.0
"""Seconds a step may go without a heartbeat before it is taken as stuck and run again."""
PROGRESS_EVERY: Final = 1.0
"""Seconds between two ``step_progress`` writes of one process (progress is coalesced)."""
PRUNE_BATCH: Final = 1000
"""Processes the retention pruner deletes per transaction."""
ADOPT_BATCH: Final = 100
"""The most processes of dead runtimes one sweep adopts."""
COUNTS_EVERY: Final = 5.0
"""Seconds between two reads of the store's counts into the gauges (other runtimes' work)."""
FOREIGN_WAITS_EVERY: Final = 0.25
"""Seconds between two reads of the processes waited on here that another runtime runs."""
LEASE_RENEWALS: Final = 4
"""Leases are renewed this many times per ``stuck_after`` (and lapsed ones looked for)."""
ITEMS_SAVE_EVERY: Final = 256
"""Changed items of a batch written in one statement (the sweep writes fewer, at its pace)."""
_BATCH_EVENT_KEYS: Final = (
    "total_items", "completed_items", "failed_items", "skipped_items", "current_batch", "batches",
)  # fmt: skip
_MAX_KEY: Final = 200
_MAX_LIST: Final = 1000


class _Attempt:
    """One attempt of one step (or one compensation), from start to finish or abandonment."""

    __slots__ = ("compensation", "interrupt", "last_beat", "number", "run", "spec", "started")

    def __init__(
        self, run: _Run, spec: StepSpec, number: int, started: float, *, compensation: bool
    ) -> None:
        self.run = run
        self.spec = spec
        self.number = number
        self.started = started
        self.last_beat = started
        self.compensation = compensation
        self.interrupt: str | None = None
        """Why the attempt must stop at its next ``ctx.progress``: cancel, pause, a timeout..."""


class _Run:
    """A process this runner runs (running or paused): its record and where it is."""

    __slots__ = (
        "attempt",
        "batch",
        "deadline",
        "definition",
        "final",
        "ids",
        "index",
        "instance",
        "log",
        "progress_dirty",
        "progress_saved",
        "record",
        "retry_at",
        "stop_request",
        "undo",
        "unsaved_items",
    )  # fmt: skip

    def __init__(
        self, record: ProcessRecord, definition: Definition, deadline: float | None, log: Any
    ) -> None:
        self.record = record
        self.definition = definition
        self.instance: Any = None
        self.index = _first_unfinished(record)
        self.attempt: _Attempt | None = None
        self.retry_at: float | None = None
        self.deadline = deadline
        self.stop_request: str | None = None
        """``pause`` or ``cancel``, asked for and waiting for the next step boundary."""
        self.final: tuple[str, Any, dict[str, Any] | None] | None = None
        """The status the process ends with once its compensations have run."""
        self.undo: builtins.list[str] = []
        """Steps still to compensate, in the order they run."""
        self.progress_dirty = False
        self.progress_saved = float("-inf")
        self.log: structlog.stdlib.BoundLogger = log
        self.batch: BatchPlan | None = None
        """The decisions of a batch's items (`tierd.Batch`), made when its step first starts."""
        self.ids = {key: record.correlation.get(key) for key in CORRELATION_KEYS}
        """The correlation ids, as every step and item context carries them."""
        self.unsaved_items: dict[int, ItemRecord] = {}
        """Items changed since their last save, by index: written together (`_save_items`)."""


class _ItemAttempt:
    """One attempt of one item of a batch: the token its `StepContext` carries."""

    __slots__ = ("attempt", "index", "item", "run", "started")

    def __init__(self, run: _Run, record: ItemRecord, started: float) -> None:
        self.run = run
        self.index = record.index
        self.attempt = record.attempts
        self.item = record.item
        self.started = started


def _first_unfinished(record: ProcessRecord) -> int:
    for index, step in enumerate(record.steps.values()):
        if step.status not in {"completed", "skipped"}:
            return index
    return len(record.steps)


def _storable(value: Any) -> TypeError | None:
    try:
        msgpack.packb(value, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as error:
        return TypeError(f"a step's output must be msgpack-able: {error}")
    return None


class ProcessRunner:
    """Runs the processes of a runtime: submit, control, query, recover. Thread-safe.

    `tierd.Runtime.processes` is one; `tierd.Client.processes` has the same methods.

    Args:
        definitions: the kinds it runs.
        store: where processes are kept.
        requester: where ``ctx.request``/``ctx.notify`` go (the runtime); None: nowhere.
        clock: the time; `tierd.testing.FakeClock` in tests.
        executor: where attempts run; a thread each by default.
        owner: this runtime's name, written on the processes it takes.
        stuck_after: seconds without a heartbeat after which an attempt is run again.
        retention: seconds each finished status is kept (``completed``, ``failed``...).
        prune_interval: seconds between two retention batches in `sweep`.
        events: where each event is published once it is stored; nowhere by default.
    """

    def __init__(
        self,
        definitions: Iterable[Definition],
        store: ProcessStore,
        *,
        requester: Requester | None = None,
        clock: Clock = SYSTEM_CLOCK,
        executor: StepExecutor | None = None,
        owner: str = "tierd",
        stuck_after: float = DEFAULT_STUCK_AFTER,
        retention: Mapping[str, float] | None = None,
        prune_interval: float = 60.0,
        events: EventSink = NO_EVENTS,
    ) -> None:
        self.definitions: dict[str, Definition] = {d.kind: d for d in definitions}
        self.store = store
        self.requester = requester
        self.clock = clock
        self.executor: StepExecutor = executor if executor is not None else ThreadExecutor()
        self.owner = owner
        self.stuck_after = stuck_after
        self.retention = dict(retention or {})
        self.prune_interval = prune_interval
        self.events = events
        self.log = get_logger(runtime=owner, component="processes")
        self._lock = threading.Lock()
        self._admission = threading.Lock()
        self._runs: dict[str, _Run] = {}
        self._running: collections.Counter[str] = collections.Counter()
        """Processes of each kind holding a slot: running or paused here, or being claimed."""
        self._pending_hint: collections.Counter[str] = collections.Counter()
        self._submits: collections.Counter[str] = collections.Counter()
        self._waiters: dict[str, builtins.list[Outcome[dict[str, Any]]]] = collections.defaultdict(
            list
        )
        self._means: dict[str, dict[str, tuple[float, int]]] = {}
        self._counters = ProcessCounters()
        self._next_prune = float("-inf")
        self._next_lease = float("-inf")
        self._next_foreign = float("-inf")
        self._next_counts = float("-inf")
        self._started = False
        self._accepting = True
        self._stopping = False

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Recover what the store says was running, then start pending work."""
        now, wall = self.clock.monotonic(), self.clock.time()
        for (kind, status), count in self.store.counts().items():
            self._counters.current[(kind, status)] = count
            if status == "pending":
                self._pending_hint[kind] = count
        for kind in self.definitions:
            means = self.store.step_durations(kind)
            self._means[kind] = {name: (mean, 100) for name, mean in means.items()}
        self._next_prune = now
        self._next_lease = wall + self.stuck_after / LEASE_RENEWALS
        self.store.renew(self.owner, wall)  # before reading them: nobody adopts them meanwhile
        with self._lock:
            for record in self.store.unfinished(self.owner):
                self._recover(record, now, wall)
            self._started = True
        self.store.watch(self._work_arrived)
        self._admit()

    def _work_arrived(self, kind: str | None) -> None:
        """The store says pending work of ``kind`` (None: of any kind) may wait: claim it."""
        with self._lock:
            kinds = list(self.definitions) if kind is None else [kind]
            for name in kinds:
                if name in self.definitions:
                    self._pending_hint[name] = max(self._pending_hint[name], 1)
        self._admit()

    def _recover(self, record: ProcessRecord, now: float, wall: float) -> None:
        definition = self.definitions.get(record.kind)
        if definition is None:
            self.log.warning("process_kind_unknown", process_id=record.process_id, kind=record.kind)
            return
        run = self._make_run(record, definition, now, wall)
        self._runs[record.process_id] = run
        self._running[record.kind] += 1
        if record.status == "paused":
            return
        self._counters.recovered[record.kind] += 1
        if run.index >= len(definition.steps):
            last = record.steps[definition.steps[-1].name]
            self._finish(run, "completed", result=last.output)
            return
        step = record.steps[definition.steps[run.index].name]
        interrupted = step.status == "running"
        if interrupted:
            step.status = "pending"
        event = self._event(run, "process_recovered", step=step.name, interrupted=interrupted)
        self._save(run, [step.name], event)
        run.log.info("process_recovered", step=step.name, interrupted=interrupted)
        self._start_attempt(run)

    def _make_run(
        self, record: ProcessRecord, definition: Definition, now: float, wall: float
    ) -> _Run:
        if list(record.steps) != definition.step_names:
            # The kind changed since the process was stored: its steps as the kind has them now.
            known = record.steps
            record.steps = {
                name: known.get(name) or StepRecord(name) for name in definition.step_names
            }
        ids = {key: record.correlation.get(key) for key in CORRELATION_KEYS}
        log = self.log.bind(process_id=record.process_id, kind=record.kind, **ids)
        deadline = None
        if definition.timeout is not None:
            ran = max(wall - (record.started_at or wall), 0.0)
            deadline = now + definition.timeout - ran
        run = _Run(record, definition, deadline, log)
        try:
            run.instance = definition.factory()
        except Exception as error:  # noqa: BLE001 - the user's constructor: the process fails
            run.instance = error
        return run

    def stop_accepting(self) -> None:
        """Refuse new submits (`Rejected`): the runtime is stopping."""
        self._accepting = False

    def stop(self, timeout: float = 5.0) -> int:
        """Interrupt every attempt at its next ``ctx.progress`` and wait up to ``timeout``.

        Nothing is marked failed: the processes stay running in the store, and
        the next start recovers them. A step that completes meanwhile is kept.
        If no attempt still runs, their leases are released: other runtimes
        sharing the store adopt them without waiting ``stuck_after``.

        Returns:
            How many attempts still ran after ``timeout``.
        """
        with self._lock:
            self._stopping = True
            self._accepting = False
            for run in self._runs.values():
                if run.attempt is not None:
                    run.attempt.interrupt = "stopping"
        left = self.executor.join(timeout)
        self.executor.shutdown()
        with self._lock:
            for run in self._runs.values():
                self._save_items(run)  # the items that ended meanwhile
        self.store.barrier().wait(timeout)
        if not left:
            # Nothing of ours still runs: other runtimes on a shared store may adopt our
            # processes at their next look instead of after stuck_after.
            try:
                self.store.renew(self.owner, 0.0)
            except Rejected as error:
                self.log.warning("process_leases_not_released", error=str(error))
        return left

    # -- submit and query --------------------------------------------------------

    def submit(
        self,
        kind: str,
        params: Any = None,
        *,
        priority: int | str = 10,
        key: str | None = None,
        correlation: Mapping[str, Any] | None = None,
    ) -> str:
        """Submit a process; return its id once it is stored, pending.

        Args:
            kind: a kind the runtime runs.
            params: the first step's input (msgpack-able).
            priority: 1..20 or a name (critical, high, normal, low, background).
            key: an idempotency key: while a process of ``kind`` with this key is
                unfinished, submitting again returns that process's id.
            correlation: ``request_id``, ``user_id``, ``session_id``, ``trace_id``
                (strings), carried on every log line and event of the process.

        Raises:
            ValueError: an unknown kind, params its checks refuse, a bad priority,
                key or correlation; nothing is stored.
            Rejected: the store cannot be written, or the runtime is stopping.
        """
        definition = self.definitions.get(kind) if isinstance(kind, str) else None
        if definition is None:
            known = ", ".join(sorted(self.definitions)) or "none"
            raise ValueError(f"unknown process kind {str(kind)[:60]!r}; this runtime runs: {known}")
        level = parse_priority(priority)
        if not MIN_PRIORITY <= level <= MAX_PRIORITY:
            raise ValueError(f"priority must be {MIN_PRIORITY}..{MAX_PRIORITY}, not {priority!r}")
        if key is not None and not (isinstance(key, str) and 0 < len(key) <= _MAX_KEY):
            raise ValueError(f"key must be a non-empty string of at most {_MAX_KEY} characters")
        ids = _check_correlation(correlation)
        params = definition.check_params(params)
        if not self._accepting:
            raise Rejected("the runtime is stopping: it takes no new processes")
        wall = self.clock.time()
        record = ProcessRecord.new(
            new_process_id(wall), kind, definition.step_names, params,
            priority=level, key=key, correlation=ids, created_at=wall,
        )  # fmt: skip
        record.seq = 1
        events = [{"type": "process_submitted", "at": wall, "seq": 1, "priority": level}]
        if key is not None:
            self.store.barrier().wait()  # a process that just finished frees its key
        with self._lock:
            # Nothing waits and a slot is free: it starts at once, written running in the
            # same transaction (one commit per submit instead of a submit and a claim).
            direct = (
                self._started
                and not self._stopping
                and self._pending_hint[kind] == 0
                and self._running[kind] < definition.max_concurrent
            )
            if direct:
                self._running[kind] += 1
        if direct:
            record.status, record.started_at, record.seq = "running", wall, 2
            events.append({"type": "process_started", "at": wall, "seq": 2})
        try:
            process_id, created = self.store.create(
                record, events, owner=self.owner if direct else None
            )
        except TypeError as error:
            self._release(kind, direct)
            raise ValueError(f"params of {kind!r} refused: {error}") from None
        except BaseException:
            self._release(kind, direct)
            raise
        if not created:
            self._release(kind, direct)
            return process_id
        self.log.debug("process_submitted", process_id=process_id, kind=kind, **ids)
        for event in events:  # committed: `create` returned (before any later transition)
            self._publish(kind, process_id, event)
        with self._lock:
            self._submits[kind] += 1
            if direct:
                self._counters.move(kind, None, "pending")
                self._adopt(record)
                return process_id
            self._counters.move(kind, None, "pending")
            self._pending_hint[kind] += 1
        self._admit()
        return process_id

    def _release(self, kind: str, reserved: bool) -> None:  # noqa: FBT001 - a flag in hand
        if reserved:
            with self._lock:
                self._running[kind] -= 1

    def get(self, process_id: str) -> dict[str, Any]:
        """The status document of a process (DESIGN §9).

        Raises:
            ProcessNotFound: no process has this id.
        """
        with self._lock:
            run = self._runs.get(process_id)
            document = self._live_document(run) if run else None
        self.store.barrier().wait()
        if document is not None:
            return document
        record = self.store.get(process_id) if isinstance(process_id, str) else None
        if record is None:
            raise ProcessNotFound(str(process_id))
        return self._stored_document(record, self._estimate_pending(record))

    def _live_document(self, run: _Run) -> dict[str, Any]:
        """The status document of a process run here (under the lock)."""
        if run.batch is not None:
            step = run.record.steps[ITEMS_STEP]
            step.checkpoint, step.progress = run.batch.summary(), run.batch.progress()
        return self._stored_document(run.record, self._estimate(run))

    def _stored_document(self, record: ProcessRecord, estimate: float | None) -> dict[str, Any]:
        document = record.status_document(estimate)
        definition = self.definitions.get(record.kind)
        if definition is not None and definition.batch is not None and ITEMS_STEP in record.steps:
            document.update(batch_fields(record.steps[ITEMS_STEP].checkpoint))
        return document

    def list(
        self,
        *,
        status: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """Processes newest first, filtered: ``{"items": [status...], "cursor": str | None}``.

        Args:
            status: only this status.
            kind: only this kind.
            since: only those submitted at or after this (epoch seconds).
            until: only those submitted before this (epoch seconds).
            limit: the page size, 1..1000.
            cursor: the ``cursor`` of the previous page.

        Raises:
            ValueError: a bad filter, limit or cursor.
        """
        if status is not None and status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= _MAX_LIST:
            raise ValueError(f"limit must be 1..{_MAX_LIST}, not {limit!r}")
        self.store.barrier().wait()
        page = self.store.list(
            status=status, kind=kind, since=since, until=until, limit=limit, cursor=cursor
        )
        with self._lock:
            items = [
                self._live_document(self._runs[r.process_id])
                if r.process_id in self._runs
                else self._stored_document(r, None)
                for r in page.items
            ]
        return {"items": items, "cursor": page.cursor}

    def history(self, process_id: str) -> builtins.list[dict[str, Any]]:
        """The process's events, oldest first (each with ``type``, ``at``, ``seq``).

        Raises:
            ProcessNotFound: no process has this id.
        """
        self.store.barrier().wait()
        events = self.store.history(process_id)
        if not events and self.store.get(process_id) is None:
            raise ProcessNotFound(process_id)
        return events

    def items(
        self,
        process_id: str,
        *,
        status: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        """A batch's items by index, one page at a time: ``{"items": [...], "cursor": ...}``.

        Each item: ``{index, item, status, attempts, error, result}``.

        Args:
            process_id: a batch (`tierd.Batch`, or a kind with an ``item_target``).
            status: only items with this status (pending, running, completed,
                failed, skipped).
            cursor: the ``cursor`` of the previous page.
            limit: the page size, 1..1000.

        Raises:
            ProcessNotFound: no process has this id.
            ValueError: a bad status, cursor or limit, or the process is not a batch.
        """
        if status is not None and status not in ITEM_STATUSES:
            raise ValueError(f"unknown item status {status!r}; one of {', '.join(ITEM_STATUSES)}")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= _MAX_LIST:
            raise ValueError(f"limit must be 1..{_MAX_LIST}, not {limit!r}")
        if cursor is not None and not (isinstance(cursor, str) and cursor.isdigit()):
            raise ValueError(f"bad cursor {str(cursor)[:40]!r}: pass back the one a page returned")
        with self._lock:
            run = self._runs.get(process_id)
            if run is not None:
                self._save_items(run)
        self.store.barrier().wait()
        record = self.store.get(process_id) if isinstance(process_id, str) else None
        if record is None:
            raise ProcessNotFound(str(process_id))
        definition = self.definitions.get(record.kind)
        if definition is not None and definition.batch is None:
            raise ValueError(
                f"process {process_id} is of kind {record.kind!r}, not a batch: it has no items"
            )
        rows = self.store.items(
            process_id,
            statuses=None if status is None else (status,),
            after=-1 if cursor is None else int(cursor),
            limit=limit + 1,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return {
            "items": [row.summary() for row in rows],
            "cursor": str(rows[-1].index) if more and rows else None,
        }

    def result(self, process_id: str) -> Any:
        """The result of a completed process.

        Raises:
            ProcessNotFound: no process has this id.
            ProcessFailed: it ended failed, cancelled or timed out.
            ValueError: it has not finished yet (`wait` for it).
        """
        document = self.get(process_id)
        return _result_of(document)

    def wait(self, process_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Wait until the process finishes; return its final status document.

        Raises:
            ProcessNotFound: no process has this id.
            RequestTimeout: it did not finish within ``timeout`` seconds.
        """
        outcome: Outcome[dict[str, Any]] = Outcome()
        with self._lock:
            self._waiters[process_id].append(outcome)
        self.store.barrier().wait()
        record = None if process_id in self._runs else self.store.get(process_id)
        if process_id not in self._runs and (record is None or record.status in TERMINAL):
            with self._lock:
                waiting = self._waiters.get(process_id, [])
                if outcome in waiting:
                    waiting.remove(outcome)
                if not waiting:
                    self._waiters.pop(process_id, None)
            if record is None:
                raise ProcessNotFound(process_id)
            return self._stored_document(record, None)
        document = outcome.wait(timeout)
        if document is None:
            with self._lock:
                waiting = self._waiters.get(process_id, [])
                if outcome in waiting:
                    waiting.remove(outcome)
                if not waiting:
                    self._waiters.pop(process_id, None)
            raise RequestTimeout(process_id, f"process {process_id}", timeout or 0.0)
        return document

    def stats(self, kind: str | None = None, window: float = 86400.0) -> dict[str, Any]:
        """Counts by status, success rate, durations and per-step figures over ``window`` seconds.

        Returns:
            ``{"kind", "window", "counts": {status: n}, "finished", "success_rate",
            "duration": {"average", "p95"}, "steps": {name: {"count", "average",
            "fastest", "slowest"}}, "bottleneck": step | None}``.
        """
        if not window > 0:
            raise ValueError(f"window must be positive seconds, not {window!r}")
        self.store.barrier().wait()
        finished = self.store.finished_since(self.clock.time() - window, kind)
        # Unfinished counts from the store: with a shared store, other runtimes' work too.
        current: collections.Counter[str] = collections.Counter()
        for (name, status), count in self.store.counts().items():
            if kind in {None, name}:
                current[status] += count
        counts = dict.fromkeys(STATUSES, 0) | dict(current)
        for item in finished:
            counts[item.status] += 1
        durations = sorted(d.duration for d in finished if d.duration is not None)
        per_step: dict[str, builtins.list[float]] = collections.defaultdict(list)
        for item in finished:
            for name, seconds in item.steps.items():
                per_step[name].append(seconds)
        steps = {
            name: {
                "count": len(values),
                "average": stats_math.fmean(values),
                "fastest": min(values),
                "slowest": max(values),
            }
            for name, values in per_step.items()
        }
        done = len(finished)
        return {
            "kind": kind,
            "window": window,
            "counts": counts,
            "finished": done,
            "success_rate": counts["completed"] / done if done else None,
            "duration": {
                "average": stats_math.fmean(durations) if durations else None,
                "p95": durations[min(int(len(durations) * 0.95), len(durations) - 1)]
                if durations
                else None,
            },
            "steps": steps,
            "bottleneck": max(steps, key=lambda n: steps[n]["average"]) if steps else None,
        }

    def statistics(self) -> ProcessStatistics:
        """A snapshot of the counters, for the metrics."""
        with self._lock:
            return self._counters.snapshot(tuple(self.definitions))

    # -- control -----------------------------------------------------------------

    def cancel(self, process_id: str) -> None:
        """Cancel a process: at once if pending or paused, else at its next boundary or beat.

        Completed steps' compensations run, in reverse order, before it is ``cancelled``.

        Raises:
            ProcessNotFound: no process has this id.
            ValueError: it has finished already.
        """
        closed = False
        with self._lock:
            run = self._runs.get(process_id)
            if run is not None:
                if run.final is not None:
                    raise ValueError(f"cannot cancel process {process_id}: it is finishing")
                if run.attempt is None:
                    closed = self._finish(run, "cancelled")
                elif run.batch is not None:
                    # A batch stops between items: the ones in flight are abandoned, skipped.
                    run.attempt.interrupt = "cancel"
                    run.attempt = None
                    run.record.steps[ITEMS_STEP].status = "failed"
                    closed = self._finish(run, "cancelled")
                else:
                    run.stop_request = "cancel"
                    run.attempt.interrupt = "cancel"
                run.log.info("process_cancel_requested")
        if run is None:
            record = self.store.cancel_pending(process_id, self.clock.time())
            if record is None:
                self._refuse(process_id, "cancel")
            assert record is not None
            cancelled = {"type": "process_cancelled", "at": record.finished_at, "seq": record.seq}
            self._publish(record.kind, process_id, cancelled)
            with self._lock:
                self._counters.move(record.kind, "pending", None)
                self._counters.finished[(record.kind, "cancelled")] += 1
                waiters = self._waiters.pop(process_id, [])
            document = self._stored_document(record, None)
            for waiter in waiters:
                waiter.set(document)
        if closed:
            self._admit()

    def pause(self, process_id: str) -> None:
        """Pause a running process at its next step boundary (or ``ctx.progress``).

        A paused process keeps its place in its kind's ``max_concurrent``.

        Raises:
            ProcessNotFound: no process has this id.
            ValueError: it is not running.
        """
        with self._lock:
            run = self._runs.get(process_id)
            if run is not None and run.record.status == "running" and run.final is None:
                if run.attempt is None:
                    self._pause_now(run)
                else:
                    run.stop_request = "pause"
                    run.attempt.interrupt = "pause"
                    if run.batch is not None:
                        self._batch_advance(run)  # no item in flight: paused now
                return
        self._refuse(process_id, "pause")

    def resume(self, process_id: str) -> None:
        """Resume a paused process (or call off a pause not yet taken).

        Raises:
            ProcessNotFound: no process has this id.
            ValueError: it is not paused.
        """
        with self._lock:
            run = self._runs.get(process_id)
            if run is not None and run.final is None:
                if run.record.status == "paused":
                    self._counters.move(run.record.kind, "paused", "running")
                    check_transition("paused", "running")
                    run.record.status = "running"
                    self._save(run, [], self._event(run, "process_resumed"))
                    run.log.info("process_resumed")
                    self._start_attempt(run)
                    return
                if run.stop_request == "pause":
                    run.stop_request = None
                    if run.attempt is not None:
                        run.attempt.interrupt = None
                        if run.batch is not None:
                            self._batch_advance(run)
                    return
        self._refuse(process_id, "resume")

    def retry(self, process_id: str, from_step: str | None = None) -> None:
        """Run a finished process again, from ``from_step`` (default: its first unfinished step).

        The steps before keep their outputs; ``from_step`` gets its last input.

        Raises:
            ProcessNotFound: no process has this id.
            ValueError: it has not finished, or its kind has no step ``from_step``.
        """
        if process_id in self._runs:
            self._refuse(process_id, "retry")
        self.store.barrier().wait()
        record = self.store.get(process_id)
        if record is None:
            raise ProcessNotFound(process_id)
        if record.status not in TERMINAL:
            self._refuse(process_id, "retry")
        definition = self.definitions.get(record.kind)
        if definition is None:
            raise ValueError(
                f"cannot retry {process_id}: this runtime runs no kind {record.kind!r}"
            )
        index = definition.index_of(from_step) if from_step else _first_unfinished(record)
        index = min(index, len(definition.steps) - 1)
        retried_at = self.clock.time()
        requeued = self.store.requeue(process_id, index, retried_at)
        if requeued is None:
            self._refuse(process_id, "retry")
        else:
            retried = {"type": "process_retried", "at": retried_at, "seq": requeued.seq,
                       "from_step": list(requeued.steps)[index]}  # fmt: skip
            self._publish(record.kind, process_id, retried)
        with self._lock:
            self._counters.move(record.kind, None, "pending")
            self._pending_hint[record.kind] += 1
            self._submits[record.kind] += 1
        self.log.info("process_retried", process_id=process_id, from_step=from_step)
        self._admit()

    def prune(self, older_than: float, status: str | None = None) -> int:
        """Delete finished processes (with steps and events) finished over ``older_than`` s ago.

        Args:
            older_than: seconds.
            status: only this finished status; None: every finished status.

        Returns:
            How many were deleted (in batches of `PRUNE_BATCH`).
        """
        if status is not None and status not in TERMINAL:
            raise ValueError(f"only finished processes are pruned: {', '.join(sorted(TERMINAL))}")
        if not older_than >= 0:
            raise ValueError(f"older_than must be seconds >= 0, not {older_than!r}")
        cutoff = self.clock.time() - older_than
        cutoffs = dict.fromkeys([status] if status else sorted(TERMINAL), cutoff)
        return self._prune(cutoffs)

    def _prune(self, cutoffs: Mapping[str, float]) -> int:
        self.store.barrier().wait()
        total = 0
        while True:
            deleted = self.store.prune(cutoffs, PRUNE_BATCH)
            total += deleted
            if deleted < PRUNE_BATCH:
                return total

    def _refuse(self, process_id: str, verb: str) -> None:
        """Raise the error for a control the process's state does not allow."""
        self.store.barrier().wait()
        record = self.store.get(process_id) if isinstance(process_id, str) else None
        if record is None and process_id not in self._runs:
            raise ProcessNotFound(str(process_id))
        status = self._runs[process_id].record.status if process_id in self._runs else None
        status = status or (record.status if record else "?")
        raise ValueError(f"cannot {verb} process {process_id}: it is {status}")

    # -- the sweep ---------------------------------------------------------------

    def sweep(self) -> None:
        """Act on time: step timeouts, heartbeats, stuck steps, retries due, process timeouts.

        Also writes coalesced progress, admits pending work, and prunes one
        retention batch every ``prune_interval``. Called by the runtime's
        sweeper; tests call it after advancing their clock.
        """
        if not self._started or self._stopping:
            return
        now = self.clock.monotonic()
        closed = False
        with self._lock:
            for run in list(self._runs.values()):
                closed |= self._check(run, now)
        if closed or any(self._pending_hint.values()):
            self._admit()
        wall = self.clock.time()
        if wall >= self._next_lease:
            self._next_lease = wall + self.stuck_after / LEASE_RENEWALS
            self._keep_leases(now, wall)
        if now >= self._next_foreign:
            self._next_foreign = now + FOREIGN_WAITS_EVERY
            self._settle_foreign_waiters()
        if now >= self._next_counts:
            self._next_counts = now + COUNTS_EVERY
            self._recount()
        if self.retention and now >= self._next_prune:
            self._next_prune = now + self.prune_interval
            wall = self.clock.time()
            cutoffs = {status: wall - keep for status, keep in self.retention.items()}
            self.store.barrier().wait()
            deleted = self.store.prune(cutoffs, PRUNE_BATCH)
            if deleted:
                self.log.info("processes_pruned", count=deleted)

    def _recount(self) -> None:
        """Set the pending, running and paused gauges from the store.

        With a shared store, processes other runtimes submit, claim or finish move them too.
        """
        self.store.barrier().wait()
        counts = self.store.counts()
        with self._lock:
            self._counters.current = collections.Counter(counts)

    def _settle_foreign_waiters(self) -> None:
        """Wake the waiters of processes that finished elsewhere (another runtime ran them)."""
        with self._lock:
            foreign = [process_id for process_id in self._waiters if process_id not in self._runs]
        for process_id in foreign:
            record = self.store.get(process_id)
            if record is None or record.status not in TERMINAL:
                continue
            with self._lock:
                if process_id in self._runs:
                    continue
                waiters = self._waiters.pop(process_id, [])
            document = record.status_document()
            for waiter in waiters:
                waiter.set(document)

    def _keep_leases(self, now: float, wall: float) -> None:
        """Renew this runtime's leases; adopt processes whose owner stopped renewing theirs."""
        self.store.renew(self.owner, wall)
        lapsed = self.store.claim_expired(
            self.owner, self.definitions, wall - self.stuck_after, wall, ADOPT_BATCH
        )
        if not lapsed:
            return
        with self._lock:
            for record in lapsed:
                self._counters.move(record.kind, None, record.status)
                self._recover(record, now, wall)
        self.log.warning("processes_adopted", count=len(lapsed))
        self._admit()

    def _check(self, run: _Run, now: float) -> bool:
        """One run's timers (under the lock); True if it closed."""
        if run.final is not None:
            return False
        record = run.record
        if run.deadline is not None and now >= run.deadline:
            entry = {
                "error_type": "ProcessTimeout", "error_code": "timeout",
                "message": f"the process ran past its timeout of {run.definition.timeout:g}s",
                "details": None, "recoverable": False, "attempt": 0, "at": self.clock.time(),
            }  # fmt: skip
            attempt = run.attempt
            if attempt is not None and not attempt.compensation:
                attempt.interrupt = "timeout"
                run.attempt = None
                step = record.steps[attempt.spec.name]
                step.status = "failed"
                step.errors.append(entry)
                self._save(run, [step.name], None)
            run.log.warning("process_timed_out")
            return self._finish(run, "timeout", error=entry)
        if run.batch is not None:
            self._save_items(run)
            if run.attempt is not None and self._batch_sweep(run, now):
                return True
            if run.progress_dirty and now - run.progress_saved >= PROGRESS_EVERY:
                self._save_progress(run, now)
            return False
        attempt = run.attempt
        if attempt is not None and not attempt.compensation:
            why = overdue(attempt.spec, attempt.started, attempt.last_beat, now, self.stuck_after)
            if why == "stuck":
                attempt.interrupt = "stuck"
                run.attempt = None
                step = record.steps[attempt.spec.name]
                step.status = "pending"
                self._counters.recovered[record.kind] += 1
                event = self._event(run, "step_recovered", step=step.name, attempt=attempt.number)
                self._save(run, [step.name], event)
                run.log.warning("step_stuck_recovered", step=step.name, attempt=attempt.number)
                self._start_attempt(run)
            elif why is not None:
                attempt.interrupt = why
                run.attempt = None
                seconds = attempt.spec.timeout if why == "timeout" else attempt.spec.heartbeat
                error: Exception = (
                    StepTimeout(f"step {attempt.spec.name} ran past its timeout of {seconds:g}s")
                    if why == "timeout"
                    else HeartbeatLost(
                        f"step {attempt.spec.name} sent no heartbeat for {seconds:g}s"
                    )
                )
                return self._failed(run, attempt, error)
        elif run.retry_at is not None and now >= run.retry_at and record.status == "running":
            self._start_attempt(run)
        if run.progress_dirty and now - run.progress_saved >= PROGRESS_EVERY:
            self._save_progress(run, now)
        return False

    # -- the steps' side (StepHost) ----------------------------------------------

    def step_beat(self, token: object, progress: float | None, note: str | None) -> None:
        """A heartbeat (and progress) from a step; raises where the attempt must stop."""
        if isinstance(token, _ItemAttempt):
            self._item_beat(token)
            return
        assert isinstance(token, _Attempt)
        with self._lock:
            run = token.run
            reason = token.interrupt
            if reason is None and run.attempt is not token:
                reason = "abandoned"
            if reason is None:
                now = self.clock.monotonic()
                token.last_beat = now
                if progress is not None or note is not None:
                    step = run.record.steps[token.spec.name]
                    if progress is not None:
                        step.progress = progress
                    if note is not None:
                        step.note = str(note)[:500]
                    run.progress_dirty = True
                    if now - run.progress_saved >= PROGRESS_EVERY:
                        self._save_progress(run, now)
                return
        if reason == "cancel":
            cancelled = Cancelled(run.record.process_id)
            cancelled.args = (f"process {run.record.process_id} was cancelled",)
            raise cancelled
        raise Interrupted(reason)

    def step_checkpoint(self, token: object, data: Any) -> None:
        """Keep a step's checkpoint durably; return once committed."""
        if isinstance(token, _ItemAttempt):
            raise TypeError("an item of a batch has no checkpoint: return its result instead")
        assert isinstance(token, _Attempt)
        problem = _storable(data)
        if problem is not None:
            raise problem
        with self._lock:
            run = token.run
            if run.attempt is not token:
                raise Interrupted(token.interrupt or "abandoned")
            run.record.steps[token.spec.name].checkpoint = data
            commit = self._save(run, [token.spec.name], None)
        error = commit.wait()
        if error is not None:
            raise error

    def step_time_left(self, token: object) -> float | None:
        """Seconds the attempt has left before its step's (or item's) or its process's timeout."""
        now = self.clock.monotonic()
        limits = []
        if isinstance(token, _ItemAttempt):
            spec = token.run.definition.batch
            if spec is not None and spec.item_timeout is not None:
                limits.append(spec.item_timeout - (now - token.started))
        else:
            assert isinstance(token, _Attempt)
            if token.spec.timeout is not None:
                limits.append(token.spec.timeout - (now - token.started))
        if token.run.deadline is not None:
            limits.append(token.run.deadline - now)
        return min(limits) if limits else None

    def _save_progress(self, run: _Run, now: float) -> None:
        attempt = run.attempt
        if attempt is None:
            run.progress_dirty = False
            return
        step = run.record.steps[attempt.spec.name]
        counts: dict[str, Any] = {}
        if run.batch is not None:
            step.checkpoint, step.progress = run.batch.summary(), run.batch.progress()
            counts = {key: step.checkpoint[key] for key in _BATCH_EVENT_KEYS}
        event = self._event(
            run, "step_progress", step=step.name, progress=step.progress, note=step.note, **counts
        )
        self._save(run, [step.name], event)
        run.progress_saved = now
        run.progress_dirty = False

    # -- admission and attempts (under the lock unless said) ---------------------

    def _admit(self) -> None:
        """Claim pending processes into free slots, by (priority, submit order). No lock held."""
        if not self._started or self._stopping:
            return
        with self._admission:
            with self._lock:
                wanted = {
                    kind: definition.max_concurrent - self._running[kind]
                    for kind, definition in self.definitions.items()
                    if self._pending_hint[kind] > 0
                    and definition.max_concurrent > self._running[kind]
                }
                for kind, count in wanted.items():
                    self._running[kind] += count  # reserved while claiming
                submits = {kind: self._submits[kind] for kind in wanted}
            for kind, count in wanted.items():
                claimed_at = self.clock.time()
                try:
                    records = self.store.claim(kind, count, self.owner, claimed_at)
                except Rejected as error:
                    self.log.error("process_claim_failed", kind=kind, error=str(error))
                    records = []
                for record in records:  # committed: `claim` returned, before the first step
                    started = {"type": "process_started", "at": claimed_at, "seq": record.seq}
                    self._publish(kind, record.process_id, started)
                with self._lock:
                    self._running[kind] -= count - len(records)
                    if len(records) < count and self._submits[kind] == submits[kind]:
                        self._pending_hint[kind] = 0
                    else:
                        self._pending_hint[kind] = max(self._pending_hint[kind] - len(records), 1)
                    for record in records:
                        self._adopt(record)

    def _adopt(self, record: ProcessRecord) -> None:
        definition = self.definitions[record.kind]
        run = self._make_run(record, definition, self.clock.monotonic(), self.clock.time())
        self._runs[record.process_id] = run
        self._counters.move(record.kind, "pending", "running")
        run.log.info("process_started", priority=record.priority)
        if isinstance(run.instance, Exception):
            entry = error_entry(run.instance, 0, self.clock.time())
            self._finish(run, "failed", error=entry)
            return
        self._start_attempt(run)

    def _input_of(self, run: _Run, index: int) -> Any:
        if index == 0:
            return run.record.params
        previous = run.definition.steps[index - 1].name
        return run.record.steps[previous].output

    def _event(self, run: _Run, kind: str, **data: Any) -> dict[str, Any]:
        run.record.seq += 1
        return {"type": kind, "at": self.clock.time(), "seq": run.record.seq, **data}

    def _save(
        self, run: _Run, steps: builtins.list[str], event: dict[str, Any] | None
    ) -> Outcome[Exception | None]:
        """Queue a transition to the store; its event is published once the commit lands."""
        commit = self.store.save(run.record, steps, event)
        if event is not None and self._followed():
            record = run.record
            commit.add_done_callback(
                functools.partial(self._published, record.kind, record.process_id, event)
            )
        return commit

    def _published(
        self, kind: str, process_id: str, event: dict[str, Any], problem: Exception | None
    ) -> None:
        """Publish a stored event (a commit's callback: the store has it, or it failed)."""
        if problem is None:
            self._publish(kind, process_id, event)

    def _followed(self) -> bool:
        """Whether anyone follows the events: nothing is built while nobody does."""
        return bool(getattr(self.events, "active", self.events is not NO_EVENTS))

    def _publish(self, kind: str, process_id: str, event: Mapping[str, Any]) -> None:
        """Publish one stored event on ``process.<kind>.<id>``, with the process's id and kind."""
        if not self._followed():
            return
        topic = f"process.{kind}.{process_id}"
        published = {"topic": topic, "process_id": process_id, "kind": kind, **event}
        self.events.publish(topic, published)

    def _start_attempt(self, run: _Run) -> None:
        if self._stopping:
            return  # the process stays running in the store: the next start runs the step
        spec = run.definition.steps[run.index]
        step = run.record.steps[spec.name]
        check_transition(step.status, "running", "step")
        now = self.clock.monotonic()
        step.status = "running"
        step.attempts += 1
        step.started_at = self.clock.time()
        step.finished_at = None
        step.progress = 0.0
        step.note = ""
        step.input = self._input_of(run, run.index)
        run.record.current_step = spec.name
        run.retry_at = None
        if run.definition.batch is not None:
            self._batch_plan(run, step)
        event = self._event(run, "step_started", step=spec.name, attempt=step.attempts)
        commit = self._save(run, [spec.name], event)
        attempt = _Attempt(run, spec, step.attempts, now, compensation=False)
        run.attempt = attempt
        run.log.debug("step_started", step=spec.name, attempt=step.attempts)
        if run.batch is not None:
            self._batch_advance(run, commit)
            return
        self.executor.submit(
            functools.partial(self._execute, attempt, commit, step.input, step.checkpoint),
            f"tierd-step-{spec.name}",
        )

    def _execute(
        self, attempt: _Attempt, commit: Outcome[Exception | None], data: Any, checkpoint: Any
    ) -> None:
        """Run one attempt in its own thread, once its start is committed; no lock held."""
        problem = commit.wait()
        run = attempt.run
        if problem is not None:
            run.log.error("process_store_write_failed", error=str(problem))
            return
        spec = attempt.spec
        name = f"{spec.name}.compensate" if attempt.compensation else spec.name
        ids = {key: run.record.correlation.get(key) for key in CORRELATION_KEYS}
        ctx = StepContext(
            self, attempt, self.requester, process_id=run.record.process_id,
            kind=run.record.kind, step=name, attempt=attempt.number,
            checkpoint_data=checkpoint, correlation=ids,
            log=run.log.bind(step=name, attempt=attempt.number),
        )  # fmt: skip
        body = spec.compensate if attempt.compensation else spec.run
        assert body is not None
        started_cpu = time.thread_time()
        output: Any = None
        failure: BaseException | None = None
        try:
            output = body(run.instance, ctx, data)
        except Interrupted as interrupted:
            failure = interrupted
        except Exception as error:  # noqa: BLE001 - a step's failure is the process's business
            failure = error
        if failure is None:
            failure = _storable(output)
        cpu = time.thread_time() - started_cpu
        if self._attempt_finished(attempt, output, failure, cpu):
            self._admit()

    def _attempt_finished(  # noqa: PLR0911 - one return per outcome of an attempt
        self, attempt: _Attempt, output: Any, failure: BaseException | None, cpu: float
    ) -> bool:
        """Decide what follows an attempt; True if its process closed. Takes the lock."""
        with self._lock:
            run = attempt.run
            if run.attempt is not attempt:
                run.log.debug("step_attempt_abandoned", step=attempt.spec.name)
                return False
            run.attempt = None
            if attempt.compensation:
                return self._compensated(run, attempt, failure)
            if self._stopping and failure is not None:
                return False
            if failure is None:
                return self._completed(run, attempt, output, cpu)
            if isinstance(failure, Interrupted) and failure.reason == "pause":
                step = run.record.steps[attempt.spec.name]
                step.status = "pending"
                self._save(run, [step.name], None)
                self._pause_now(run)
                return False
            if isinstance(failure, Cancelled) or run.stop_request == "cancel":
                step = run.record.steps[attempt.spec.name]
                step.status = "failed"
                step.errors.append(error_entry(failure, attempt.number, self.clock.time()))
                self._save(run, [step.name], None)
                return self._finish(run, "cancelled")
            return self._failed(run, attempt, failure)

    def _completed(self, run: _Run, attempt: _Attempt, output: Any, cpu: float) -> bool:
        record, spec = run.record, attempt.spec
        step = record.steps[spec.name]
        now = self.clock.monotonic()
        step.status = "completed"
        step.progress = 1.0
        step.output = output
        step.finished_at = self.clock.time()
        step.duration = now - attempt.started
        step.cpu = cpu
        step.checkpoint = None
        self._counters.step_durations[(record.kind, spec.name)].observe(step.duration)
        self._learn(record.kind, spec.name, step.duration)
        event = self._event(
            run, "step_completed", step=spec.name, attempt=attempt.number, duration=step.duration
        )
        self._save(run, [spec.name], event)
        run.log.debug("step_completed", step=spec.name, duration=step.duration)
        if self._stopping:
            return False
        if run.index + 1 >= len(run.definition.steps):
            return self._finish(run, "completed", result=output)
        if run.stop_request == "cancel":
            return self._finish(run, "cancelled")
        run.index += 1
        if run.stop_request == "pause":
            self._pause_now(run)
            return False
        self._start_attempt(run)
        return False

    def _failed(self, run: _Run, attempt: _Attempt, failure: BaseException) -> bool:
        record, spec = run.record, attempt.spec
        step = record.steps[spec.name]
        entry = error_entry(failure, attempt.number, self.clock.time())
        step.errors.append(entry)
        step.status = "failed"
        step.finished_at = self.clock.time()
        decision = decide_step_retry(spec.retry, len(step.errors), failure)
        if decision is None:
            event = self._event(run, "step_failed", step=spec.name, attempt=attempt.number,
                                error=entry)  # fmt: skip
            self._save(run, [spec.name], event)
            run.log.warning("step_failed", step=spec.name, attempt=attempt.number,
                            error_type=entry["error_type"], error=entry["message"])  # fmt: skip
            return self._finish(run, "failed", error=entry)
        self._counters.step_retries[(record.kind, spec.name)] += 1
        event = self._event(run, "step_retrying", step=spec.name, attempt=attempt.number,
                            delay=decision.delay, error=entry)  # fmt: skip
        self._save(run, [spec.name], event)
        run.log.info("step_retrying", step=spec.name, attempt=attempt.number,
                     delay=decision.delay, error_type=entry["error_type"])  # fmt: skip
        if run.stop_request == "cancel":
            return self._finish(run, "cancelled")
        if run.stop_request == "pause":
            self._pause_now(run)
            return False
        run.retry_at = self.clock.monotonic() + decision.delay
        if decision.delay <= 0:
            self._start_attempt(run)
        return False

    def _pause_now(self, run: _Run) -> None:
        check_transition(run.record.status, "paused")
        self._counters.move(run.record.kind, run.record.status, "paused")
        run.record.status = "paused"
        run.stop_request = None
        run.retry_at = None
        self._save(run, [], self._event(run, "process_paused"))
        run.log.info("process_paused", step=run.record.current_step)

    def _finish(
        self, run: _Run, status: str, *, result: Any = None, error: dict[str, Any] | None = None
    ) -> bool:
        """End the process with ``status`` once its compensations ran; True if closed now."""
        run.final = (status, result, error)
        run.retry_at = None
        if status != "completed":
            run.undo = [
                spec.name
                for spec in reversed(run.definition.steps)
                if spec.compensate is not None and run.record.steps[spec.name].status == "completed"
            ]
        return self._next_compensation(run)

    def _next_compensation(self, run: _Run) -> bool:
        if self._stopping:
            return False
        if run.undo:
            name = run.undo.pop(0)
            spec = run.definition.steps[run.definition.index_of(name)]
            commit = self._save(run, [], self._event(run, "compensation_started", step=name))
            attempt = _Attempt(run, spec, 1, self.clock.monotonic(), compensation=True)
            run.attempt = attempt
            run.record.current_step = name
            self.executor.submit(
                functools.partial(
                    self._execute, attempt, commit, run.record.steps[name].output, None
                ),
                f"tierd-compensate-{name}",
            )
            return False
        self._close(run)
        return True

    def _compensated(self, run: _Run, attempt: _Attempt, failure: BaseException | None) -> bool:
        name = attempt.spec.name
        if failure is None:
            event = self._event(run, "compensation_completed", step=name)
        else:
            entry = error_entry(failure, 1, self.clock.time())
            event = self._event(run, "compensation_failed", step=name, error=entry)
            run.log.error("compensation_failed", step=name, error=entry["message"])
        self._save(run, [], event)
        return self._next_compensation(run)

    def _close(self, run: _Run) -> None:
        assert run.final is not None
        status, result, error = run.final
        record = run.record
        check_transition(record.status, status)
        old = record.status
        record.status = status
        record.result = result
        record.error = error
        record.finished_at = self.clock.time()
        record.current_step = None
        skipped = [n for n, s in record.steps.items() if s.status == "pending"]
        for name in skipped:
            record.steps[name].status = "skipped"
        saved = skipped
        if run.batch is not None:
            left = run.batch.close()  # every item read and not finished: skipped
            if left:
                self._items_changed(run, left)
            self._save_items(run)
            step = record.steps[ITEMS_STEP]
            step.checkpoint, step.progress = run.batch.summary(), run.batch.progress()
            saved = [*skipped, ITEMS_STEP] if ITEMS_STEP not in skipped else skipped
        commit = self._save(run, saved, self._event(run, f"process_{status}"))
        del self._runs[record.process_id]
        self._running[record.kind] -= 1
        self._counters.move(record.kind, old, None)
        self._counters.finished[(record.kind, status)] += 1
        if record.started_at is not None:
            seconds = max(record.finished_at - record.started_at, 0.0)
            self._counters.durations[record.kind].observe(seconds)
        run.log.info("process_finished", status=status)
        waiters = self._waiters.pop(record.process_id, [])
        if waiters:
            document = self._stored_document(record, None)
            commit.add_done_callback(lambda _: [waiter.set(document) for waiter in waiters])

    # -- batches: the items of a batch's one step (under the lock unless said) ----

    def _items_changed(self, run: _Run, records: Iterable[ItemRecord]) -> None:
        """Note items whose state changed; they are written together, `ITEMS_SAVE_EVERY` at once.

        An item's start and end are written late (by the next group, the sweep
        or the batch's end), never early: after a crash, an item whose end was
        not written runs again, as one in flight does. Writing each start
        before its item runs would cost a commit wait per item (measured: a
        third of the batch's rate); so an attempt cut short by a crash before
        its start was written is not counted in ``attempts``.
        """
        unsaved = run.unsaved_items
        for record in records:
            unsaved[record.index] = record
        if len(unsaved) >= ITEMS_SAVE_EVERY:
            self._save_items(run)

    def _save_items(self, run: _Run) -> None:
        if not run.unsaved_items:
            return
        rows, run.unsaved_items = list(run.unsaved_items.values()), {}
        try:
            self.store.save_items(run.record.process_id, rows)
        except TypeError:  # a StepError's details that msgpack cannot write: kept as text
            for row in rows:
                if row.error is not None and _storable(row.error) is not None:
                    row.error = {**row.error, "details": repr(row.error.get("details"))[:500]}
            self.store.save_items(run.record.process_id, rows)

    def _batch_plan(self, run: _Run, step: StepRecord) -> None:
        """Make the run's `BatchPlan` from the store's items (after a restart or a retry)."""
        spec = run.definition.batch
        assert spec is not None
        if run.batch is None:
            saved = step.checkpoint if isinstance(step.checkpoint, dict) else None
            process_id = run.record.process_id
            counts = self.store.item_counts(process_id)
            # No checkpoint but items stored: a retry of a finished batch, whose
            # failed and skipped items run again.
            rerun = () if saved is not None else ("failed", "skipped")
            run.batch = BatchPlan(
                spec,
                counts=counts,
                exhausted=bool(saved and saved.get("exhausted")),
                batches=int(saved.get("batches") or 0) if saved else 0,
                rerun=rerun,
            )
            if run.batch.failed:
                stored = self.store.items(
                    process_id, statuses=("failed",), limit=MAX_LISTED_FAILURES
                )
                run.batch.failures = [
                    {"index": one.index, "item": one.item, "error": one.error} for one in stored
                ]
        step.checkpoint, step.progress = run.batch.summary(), run.batch.progress()

    def _batch_advance(
        self, run: _Run, commit: Outcome[Exception | None] | None = None, *, ending: bool = False
    ) -> bool:
        """Act on what the batch's plan decides now; True if the process closed.

        Args:
            run: a batch whose step is running here.
            commit: the commit of the step's start; its items and reads wait for it.
            ending: called at the end of an executor job (an item's, a read's):
                the first item started runs next in that job's thread.
        """
        plan = run.batch
        assert plan is not None
        if self._stopping or run.final is not None or run.attempt is None:
            return False
        now = self.clock.monotonic()
        decision = plan.next(now, run.stop_request)
        kind = run.record.kind
        if decision.start:
            self._items_changed(run, decision.start)
            for position, record in enumerate(decision.start):
                job = functools.partial(self._execute_item, _ItemAttempt(run, record, now), commit)
                if ending and position == 0:
                    self.executor.submit_next(job, f"tierd-item-{kind}")  # no thread switch
                else:
                    self.executor.submit(job, f"tierd-item-{kind}")
        if decision.feed is not None:
            job = functools.partial(self._feed, run, plan, decision.feed, run.attempt, commit)
            self.executor.submit(job, f"tierd-items-{kind}")
        run.attempt.last_beat = now
        run.progress_dirty = True
        if decision.outcome is not None:
            return self._batch_end(run, *decision.outcome)
        if now - run.progress_saved >= PROGRESS_EVERY:
            self._save_progress(run, now)
        if decision.idle and run.stop_request == "pause":
            self._save_items(run)
            run.record.steps[ITEMS_STEP].status = "pending"
            run.attempt = None
            self._save(run, [ITEMS_STEP], None)
            self._pause_now(run)
        return False

    def _batch_end(self, run: _Run, status: str, result: Any, error: dict[str, Any] | None) -> bool:
        attempt = run.attempt
        assert attempt is not None
        assert run.batch is not None
        run.attempt = None
        step = run.record.steps[ITEMS_STEP]
        step.finished_at = self.clock.time()
        step.duration = self.clock.monotonic() - attempt.started
        if error is None:
            step.status, step.output = "completed", None
            event = self._event(run, "step_completed", step=ITEMS_STEP, attempt=attempt.number,
                                duration=step.duration)  # fmt: skip
        else:
            error["at"] = step.finished_at
            step.status = "failed"
            step.errors.append(error)
            event = self._event(run, "step_failed", step=ITEMS_STEP, attempt=attempt.number,
                                error=error)  # fmt: skip
            run.log.warning("batch_failed", error=error["message"])
        step.checkpoint, step.progress = run.batch.summary(), run.batch.progress()
        self._save_items(run)
        self._save(run, [ITEMS_STEP], event)
        return self._finish(run, status, result=result, error=error)

    def _batch_sweep(self, run: _Run, now: float) -> bool:
        """Fail items past their ``item_timeout`` (or silent), start what is due; True if closed."""
        plan = run.batch
        assert plan is not None
        late = plan.overdue(now, self.stuck_after)
        for index, attempt, why in late:
            entry = error_entry(ItemTimeout(f"item {index} {why}"), attempt, self.clock.time())
            record = plan.finished(index, attempt, now, error=entry)
            if record is not None:
                self._items_changed(run, [record])
                run.log.warning("batch_item_timed_out", item=index, attempt=attempt)
        return self._batch_advance(run)

    def _feed(
        self,
        run: _Run,
        plan: BatchPlan,
        feed: Feed,
        attempt: _Attempt,
        commit: Outcome[Exception | None] | None,
    ) -> None:
        """Read one chunk of items, from the store or from ``items()``; no lock held."""
        problem = commit.wait() if commit is not None else None
        items: builtins.list[ItemRecord] = []
        error: BaseException | None = problem
        process_id = run.record.process_id
        if problem is None:
            try:
                if feed.statuses is not None:
                    items = self.store.items(
                        process_id, statuses=feed.statuses, after=feed.after, limit=feed.limit
                    )
                else:
                    if plan.source is None:
                        spec = run.definition.batch
                        assert spec is not None
                        ctx = self._context(run, attempt, ITEMS_STEP, attempt.number)
                        source = iter(spec.items(run.instance, ctx, run.record.params))
                        plan.source = itertools.islice(source, feed.skip, None)
                    for item in itertools.islice(plan.source, feed.limit):
                        items.append(ItemRecord(feed.start + len(items), item))
            except (Exception, Interrupted) as failure:  # noqa: BLE001 - the user's items()
                error = failure
        closed = False
        with self._lock:
            if run.batch is not plan or plan.closed:
                plan.feeding = False
                return  # the batch ended meanwhile: these items were never stored
            if items and feed.statuses is None:  # the items read before an error count
                try:
                    self.store.add_items(process_id, items)
                except TypeError as unstorable:
                    error = TypeError(f"an item from items() is not msgpack-able: {unstorable}")
                    items = []
            entry = None if error is None else error_entry(error, 1, self.clock.time())
            plan.take(feed, items, entry)
            if run.attempt is not None:
                closed = self._batch_advance(run, ending=True)
        if closed:
            self._admit()

    def _execute_item(self, token: _ItemAttempt, commit: Outcome[Exception | None] | None) -> None:
        """Run one attempt of one item in its own thread; no lock held."""
        if commit is not None and commit.wait() is not None:
            return  # the store failed: the item stays in flight until its timeout
        run = token.run
        spec = run.definition.batch
        assert spec is not None
        ctx = self._context(run, token, ITEMS_STEP, token.attempt, item=token.index)
        output: Any = None
        failure: BaseException | None = None
        try:
            output = spec.process_item(run.instance, ctx, token.item)
        except Interrupted as interrupted:
            failure = interrupted
        except Exception as error:  # noqa: BLE001 - an item's failure is the batch's business
            failure = error
        if failure is None:
            failure = _storable(output)
        if self._item_finished(token, output, failure):
            self._admit()

    def _item_finished(
        self, token: _ItemAttempt, output: Any, failure: BaseException | None
    ) -> bool:
        """Record the end of an item's attempt and go on; True if its batch closed."""
        with self._lock:
            run = token.run
            plan = run.batch
            if plan is None or isinstance(failure, Interrupted):
                return False
            now = self.clock.monotonic()
            entry = (
                None if failure is None else error_entry(failure, token.attempt, self.clock.time())
            )
            record = plan.finished(token.index, token.attempt, now, result=output, error=entry)
            if record is None:
                return False  # abandoned: past its timeout, or the batch ended
            self._items_changed(run, [record])
            return self._batch_advance(run, ending=True)

    def _item_beat(self, token: _ItemAttempt) -> None:
        """A heartbeat from an item: raises if it must stop (cancelled, or abandoned)."""
        with self._lock:
            run = token.run
            plan = run.batch
            now = self.clock.monotonic()
            if plan is not None and not plan.closed and plan.alive(token.index, token.attempt, now):
                if run.attempt is not None:
                    run.attempt.last_beat = now
                return
            cancelled = run.final is not None and run.final[0] == "cancelled"
        if cancelled:
            raise Cancelled(run.record.process_id)
        raise Interrupted("abandoned")

    def _context(
        self, run: _Run, token: object, step: str, attempt: int, **bound: Any
    ) -> StepContext:
        return StepContext(
            self, token, self.requester, process_id=run.record.process_id,
            kind=run.record.kind, step=step, attempt=attempt, checkpoint_data=None,
            correlation=run.ids, log=run.log.bind(step=step, attempt=attempt, **bound),
        )  # fmt: skip

    # -- estimates ---------------------------------------------------------------

    def _learn(self, kind: str, step: str, seconds: float) -> None:
        means = self._means.setdefault(kind, {})
        mean, count = means.get(step, (0.0, 0))
        count = min(count + 1, 1000)
        means[step] = (mean + (seconds - mean) / count, count)

    def _estimate(self, run: _Run) -> float | None:
        """When a running process should finish, from its kind's past step durations."""
        means = self._means.get(run.record.kind, {})
        left = 0.0
        for index, spec in enumerate(run.definition.steps):
            step = run.record.steps[spec.name]
            if step.status in {"completed", "skipped"} or index < run.index:
                continue
            if spec.name not in means:
                return None
            share = 1.0 - step.progress if index == run.index else 1.0
            left += means[spec.name][0] * share
        return self.clock.time() + left

    def _estimate_pending(self, record: ProcessRecord) -> float | None:
        if record.status != "pending":
            return None
        means = self._means.get(record.kind, {})
        if any(name not in means for name in record.steps):
            return None
        return self.clock.time() + sum(means[name][0] for name in record.steps)


def _check_correlation(correlation: Mapping[str, Any] | None) -> dict[str, Any]:
    if correlation is None:
        return {}
    if not isinstance(correlation, dict):
        raise ValueError("correlation must be a map of request_id, user_id, session_id, trace_id")
    unknown = sorted(set(correlation) - set(CORRELATION_KEYS))
    if unknown:
        raise ValueError(f"unknown correlation keys {unknown}; use {', '.join(CORRELATION_KEYS)}")
    for key, value in correlation.items():
        if value is not None and not (isinstance(value, str) and len(value) <= 200):
            raise ValueError(f"correlation.{key} must be a string of at most 200 characters")
    return dict(correlation)


def _result_of(document: dict[str, Any]) -> Any:
    status = document["status"]
    if status == "completed":
        return document["result"]
    if status in TERMINAL:
        raise ProcessFailed(document["process_id"], status, document["error"])
    raise ValueError(
        f"process {document['process_id']} is {status}: no result yet; wait for it first"
    )
