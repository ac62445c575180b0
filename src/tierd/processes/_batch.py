"""Batches: `Batch`, a process over many items, and `BatchPlan`, the decisions of one batch.

A batch is a process with one step, ``items``, that the runner runs item by
item instead of as one body: ``items()`` is read in chunks into the store,
``batch_size`` items at a time form a batch, at most ``max_concurrent`` of
them run at once, a batch with failures runs again for its failed items only
(``retry_failed_batches`` times), and the next batch waits
``delay_between_batches`` seconds after the last one ended.

`BatchPlan` holds that state for one running batch process and decides; it
does no I/O and reads no clock: the runner calls it under its lock with the
time, and acts on what it returns (`Next`): items to start, a chunk to read
from ``items()`` or the store, or the outcome. The runner keeps the items in
the store (`ProcessStore.add_items`, `save_items`) and runs them through its executor.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
from typing import TYPE_CHECKING, Any, ClassVar, Final

from ._definition import (
    _STEP_MARK,
    DEFAULT_MAX_CONCURRENT,
    BatchSpec,
    Definition,
    Process,
    StepSpec,
    _snake_case,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

    from ._context import StepContext
    from ._record import ItemRecord

FEED_CHUNK: Final = 1000
"""Items read from ``items()`` (or from the store, after a restart) at a time."""
MAX_LISTED_FAILURES: Final = 1000
"""Failed items a batch's result (or error details) lists; `ProcessRunner.items` pages the rest."""
ITEMS_STEP: Final = "items"
"""The name of a batch's one step."""


def _run_by_the_runner(_instance: Any, _ctx: StepContext, _data: Any) -> Any:
    """A batch's ``items`` step has no body: the runner runs it item by item."""
    raise RuntimeError("a batch's items step is run by the process runner, item by item")


def batch_definition(
    kind: str,
    spec: BatchSpec,
    factory: Callable[[], Any],
    *,
    timeout: float | None = None,
    max_concurrent: int = DEFAULT_MAX_CONCURRENT,
    params_model: Any = None,
) -> Definition:
    """The `Definition` of a batch kind: one step, ``items``, run item by item.

    Args:
        kind: the kind's name.
        spec: how its batches run.
        factory: makes the instance ``items`` and ``process_item`` are called on.
        timeout: seconds the whole batch may take.
        max_concurrent: batches of the kind running at once.
        params_model: a pydantic model the params are checked with.
    """
    step = StepSpec(ITEMS_STEP, _run_by_the_runner)
    return Definition(kind, (step,), factory, timeout, max_concurrent, params_model, batch=spec)


class Batch(Process):
    """A process over many items; subclass it and write `process_item` (and `items`).

    Example::

        class ImportCategory(tierd.Batch):
            batch_size = 5                # items per batch
            max_concurrent = 3            # items in flight at once
            delay_between_batches = 1.0   # seconds between batches
            retry_failed_batches = 2      # a batch runs again for its failed items
            fail_policy = "collect"       # "fail_fast" | "collect" | a failed fraction

            def items(self, ctx, params):
                return range(params["count"])

            def process_item(self, ctx, item):
                return ctx.request("importer@2", item)

    On a `Batch`, ``max_concurrent`` is the items in flight at once, as
    DESIGN §10 has it; the batches of the kind running at once are
    ``max_processes``. ``items()`` may be long (a generator): it is read in
    chunks of `FEED_CHUNK` into the store as the batch goes, never all at
    once. It is called again after a restart and the items stored already
    are skipped, so it must yield the same items in the same order for the
    same params.
    """

    batch_size: ClassVar[int] = 10
    """Items per batch."""
    max_concurrent: ClassVar[int] = 1
    """Items in flight at once (within one batch)."""
    max_processes: ClassVar[int] = DEFAULT_MAX_CONCURRENT
    """Batches of this kind running at once; the others wait, pending."""
    delay_between_batches: ClassVar[float] = 0.0
    """Seconds from the end of one batch (or of a batch's retry) to the start of the next."""
    retry_failed_batches: ClassVar[int] = 0
    """Times a batch with failed items runs again, for those items only."""
    fail_policy: ClassVar[str | float] = "collect"
    """``"collect"``: run every item, complete, list the failures in the result;
    ``"fail_fast"``: stop at the first item that fails for good (the rest are
    ``skipped``); a float: run every item, and fail when the failed fraction
    reaches it."""
    item_timeout: ClassVar[float | None] = None
    """Seconds one item may take; past it the attempt fails (a ``TimeoutError``).
    None: no limit but the runtime's ``stuck_after`` without a heartbeat."""

    def items(self, ctx: StepContext, params: Any) -> Iterable[Any]:
        """The items to process, in order; by default ``params["items"]``.

        Raises:
            ValueError: the params have no ``items`` list (when not overridden).
        """
        if isinstance(params, dict) and isinstance(params.get("items"), list):
            return params["items"]  # type: ignore[no-any-return]
        raise ValueError("the params of this batch need an 'items' list")

    def validate(self, params: Any) -> Any:
        """Check the params at submit: without an `items` of its own, ``params["items"]``."""
        if type(self).items is Batch.items:
            return _check_items_list(params)
        return params

    def process_item(self, ctx: StepContext, item: Any) -> Any:
        """Process one item; return its result (msgpack-able). Runs in its own thread.

        Raise to fail the item (a `tierd.StepError` says why with a code).
        """
        raise NotImplementedError

    @classmethod
    def definition(cls) -> Definition:
        """The `Definition` the runner runs for this class.

        Raises:
            TypeError: the class does not override ``process_item``, or has steps.
            ValueError: a limit out of range, naming it.
        """
        if cls.process_item is Batch.process_item:
            raise TypeError(f"{cls.__qualname__} must define process_item(self, ctx, item)")
        if any(
            hasattr(value, _STEP_MARK) for klass in cls.__mro__ for value in vars(klass).values()
        ):
            raise TypeError(f"{cls.__qualname__} is a Batch: it has items, not @tierd.step steps")
        try:
            spec = BatchSpec(
                items=cls.items,
                process_item=cls.process_item,
                batch_size=cls.batch_size,
                max_concurrent=cls.max_concurrent,
                delay_between_batches=cls.delay_between_batches,
                retry_failed_batches=cls.retry_failed_batches,
                fail_policy=cls.fail_policy,
                item_timeout=cls.item_timeout,
            )
        except ValueError as error:
            raise ValueError(f"{cls.__qualname__}: {error}") from None
        return batch_definition(
            cls.kind or _snake_case(cls.__name__),
            spec,
            cls,
            timeout=cls.timeout,
            max_concurrent=cls.max_processes,
            params_model=cls.params_model,
        )


def _request_item(target: str, timeout: float, _instance: Any, ctx: StepContext, item: Any) -> Any:
    return ctx.request(target, item, timeout=timeout)


def _params_items(_instance: Any, _ctx: StepContext, params: Any) -> Iterable[Any]:
    if isinstance(params, dict) and isinstance(params.get("items"), list):
        return params["items"]  # type: ignore[no-any-return]
    raise ValueError("the params of a batch with an item_target need an 'items' list")


def _check_items_list(params: Any) -> Any:
    if not (isinstance(params, dict) and isinstance(params.get("items"), list)):
        raise ValueError('a batch of this kind takes its items in the params: {"items": [...]}')
    return params


class _ItemRequests:
    """What a config-declared batch's functions are called on; it checks the params."""

    def validate(self, params: Any) -> Any:
        """Refuse params without an ``items`` list."""
        return _check_items_list(params)


def request_items(
    kind: str,
    target: str,
    spec_options: Mapping[str, Any],
    *,
    timeout: float | None = None,
    max_concurrent: int = DEFAULT_MAX_CONCURRENT,
) -> Definition:
    """A batch kind whose items are requests to a daemon: ``params["items"]``, one request each.

    Args:
        kind: the kind's name.
        target: the daemon, ``daemon@level``; each item is a request's payload.
        spec_options: `BatchSpec`'s limits (``batch_size``, ``max_concurrent``...).
        timeout: seconds the whole batch may take.
        max_concurrent: batches of the kind running at once.
    """
    seconds = spec_options.get("item_timeout") or 30.0
    spec = BatchSpec(
        items=_params_items,
        process_item=functools.partial(_request_item, target, seconds),
        **spec_options,
    )
    return batch_definition(
        kind, spec, _ItemRequests, timeout=timeout, max_concurrent=max_concurrent
    )


# -- the decisions of one batch --------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Feed:
    """Read the next chunk: from the store (``statuses`` given) or from ``items()``."""

    statuses: tuple[str, ...] | None
    """Stored items to run again with these statuses, after index ``after``; None: ``items()``."""
    after: int
    skip: int
    """Items ``items()`` yielded that are stored already (read past them)."""
    start: int
    """The index of the first new item."""
    limit: int


@dataclasses.dataclass(frozen=True, slots=True)
class Next:
    """What the runner does now for one batch."""

    start: list[ItemRecord]
    """Items to mark running and run (their ``attempts`` are counted already)."""
    feed: Feed | None
    """A chunk to read, outside the lock; None: none now."""
    outcome: tuple[str, Any, dict[str, Any] | None] | None
    """``(status, result, error)`` the batch ends with now; None: not yet."""
    idle: bool
    """No item is in flight: a pause may take effect."""


class _InFlight:
    __slots__ = ("last_beat", "record", "started")

    def __init__(self, record: ItemRecord, now: float) -> None:
        self.record = record
        self.started = now
        self.last_beat = now


class BatchPlan:
    """One running batch process: its buffer, current batch, items in flight and counts.

    Made by the runner when the batch's step starts, from the store's counts of
    the items it has already (after a restart or a retry); touched only under
    the runner's lock.

    Args:
        spec: how the batch runs.
        counts: the stored items by status.
        exhausted: ``items()`` was read to its end before (from the checkpoint).
        batches: batches started before.
        rerun: stored statuses to run again (``failed`` and ``skipped`` on a retry).
    """

    def __init__(
        self,
        spec: BatchSpec,
        *,
        counts: Mapping[str, int] | None = None,
        exhausted: bool = False,
        batches: int = 0,
        rerun: Sequence[str] = (),
    ) -> None:
        counts = dict(counts or {})
        self.spec = spec
        self.fed = sum(counts.values())
        """Items in the store: the index the next item from ``items()`` gets."""
        self.completed = counts.get("completed", 0)
        self.failed = 0 if "failed" in rerun else counts.get("failed", 0)
        self.skipped = 0 if "skipped" in rerun else counts.get("skipped", 0)
        self.recovered_failures = self.failed
        """Failed items from before a restart: not in `failures`, read from the store."""
        self.exhausted = exhausted
        backlog = ("pending", "running", *rerun)
        self._backlog: tuple[str, ...] | None = (
            backlog if any(counts.get(status, 0) for status in backlog) else None
        )
        self._backlog_after = -1
        self.source: Iterator[Any] | None = None
        """The iterator over ``items()``; only the feed job touches it, while `feeding`."""
        self.feeding = False
        self.source_error: dict[str, Any] | None = None
        self.batches = batches
        self._buffer: collections.deque[ItemRecord] = collections.deque()
        self._queue: collections.deque[ItemRecord] = collections.deque()
        self._retry: list[ItemRecord] = []
        self._in_flight: dict[int, _InFlight] = {}
        self._current: int | None = None
        self._round = 0
        self._batch_items = 0
        self._batch_done = 0
        self._batch_failed = 0
        self._next_at = -math.inf
        self.stopping: str | None = None
        """``fail_fast`` once an item failed for good under that policy: nothing more starts."""
        self.failures: list[dict[str, Any]] = []
        """The first `MAX_LISTED_FAILURES` items that failed for good: index, item, error."""
        self.closed = False

    # -- feeding -----------------------------------------------------------------

    @property
    def source_done(self) -> bool:
        """Nothing more will be read: the stored backlog and ``items()`` are both done."""
        return self._backlog is None and self.exhausted

    def _want_feed(self) -> Feed | None:
        if self.feeding or self.source_done or self.stopping or self.closed:
            return None
        chunk = max(FEED_CHUNK, self.spec.batch_size)
        if len(self._buffer) >= chunk:
            return None
        self.feeding = True
        if self._backlog is not None:
            return Feed(self._backlog, self._backlog_after, 0, self.fed, chunk)
        return Feed(None, -1, self.fed if self.source is None else 0, self.fed, chunk)

    def take(self, feed: Feed, items: list[ItemRecord], error: dict[str, Any] | None) -> None:
        """Take a chunk the runner read for ``feed``: stored items, or new ones from ``items()``.

        Args:
            feed: what was asked.
            items: the items read (new ones are pending, with their indexes).
            error: the error entry if ``items()`` (or the read) raised: no more are read.
        """
        self.feeding = False
        if self.closed:
            return
        for record in items:
            record.status = "pending"
        self._buffer.extend(items)
        if feed.statuses is None:
            self.fed += len(items)
        if error is not None:
            self.source_error = error
            self._backlog = None
            self.exhausted = True
            return
        if feed.statuses is not None:
            if items:
                self._backlog_after = items[-1].index
            if len(items) < feed.limit:
                self._backlog = None
            return
        if len(items) < feed.limit:
            self.exhausted = True

    # -- running -----------------------------------------------------------------

    def next(self, now: float, stop: str | None) -> Next:
        """What to do now: items to start, a chunk to read, or the outcome.

        Args:
            now: the monotonic time.
            stop: ``pause`` while a pause is asked for: start nothing.
        """
        start: list[ItemRecord] = []
        if stop is None and self.stopping is None and not self.closed:
            size = self.spec.batch_size
            if (
                self._current is None
                and now >= self._next_at
                and (len(self._buffer) >= size or self.source_done)
                and self._buffer
            ):
                self.batches += 1
                self._current = self.batches
                self._round = 0
                take = min(size, len(self._buffer))
                self._queue.extend(self._buffer.popleft() for _ in range(take))
                self._batch_items, self._batch_done, self._batch_failed = take, 0, 0
            if now >= self._next_at:
                while self._queue and len(self._in_flight) < self.spec.max_concurrent:
                    record = self._queue.popleft()
                    record.status = "running"
                    record.attempts += 1
                    record.error = None
                    self._in_flight[record.index] = _InFlight(record, now)
                    start.append(record)
        feed = self._want_feed()
        outcome = None
        idle = not self._in_flight
        finished = self._current is None and self.source_done and not self._buffer
        if idle and not self.closed and (self.stopping is not None or finished):
            outcome = self._outcome()
        return Next(start, feed, outcome, idle)

    def alive(self, index: int, attempt: int, now: float | None = None) -> bool:
        """Whether this attempt of item ``index`` is in flight (and a heartbeat at ``now``)."""
        entry = self._in_flight.get(index)
        if entry is None or entry.record.attempts != attempt:
            return False
        if now is not None:
            entry.last_beat = now
        return True

    def finished(
        self,
        index: int,
        attempt: int,
        now: float,
        *,
        result: Any = None,
        error: dict[str, Any] | None = None,
    ) -> ItemRecord | None:
        """Take the end of an item's attempt; return its record to store, or None if stale.

        A failed item waits for its batch's retry while ``retry_failed_batches``
        allow one (stored ``pending``); else it has failed for good.
        """
        if self.closed or not self.alive(index, attempt):
            return None
        record = self._in_flight.pop(index).record
        if error is None:
            record.status, record.result, record.error = "completed", result, None
            self.completed += 1
            self._batch_done += 1
        elif self._round < self.spec.retry_failed_batches and self.stopping is None:
            record.status, record.error = "pending", error
            self._retry.append(record)
        else:
            record.status, record.error = "failed", error
            self.failed += 1
            self._batch_failed += 1
            if len(self.failures) < MAX_LISTED_FAILURES:
                self.failures.append({"index": index, "item": record.item, "error": error})
            if self.spec.fail_policy == "fail_fast":
                self.stopping = "fail_fast"
        if not self._queue and not self._in_flight and self._current is not None:
            self._next_at = now + self.spec.delay_between_batches
            if self._retry and self.stopping is None:
                self._round += 1
                self._queue.extend(self._retry)
                self._retry = []
            else:
                self._current = None
        return record

    def overdue(self, now: float, stuck_after: float) -> list[tuple[int, int, str]]:
        """Items past ``item_timeout`` or silent for ``stuck_after``: ``(index, attempt, why)``."""
        limit = self.spec.item_timeout
        late = []
        for index, entry in self._in_flight.items():
            if limit is not None and now - entry.started >= limit:
                late.append(
                    (index, entry.record.attempts, f"ran past its item_timeout of {limit:g}s")
                )
            elif now - entry.last_beat >= stuck_after:
                late.append(
                    (index, entry.record.attempts, f"sent no heartbeat for {stuck_after:g}s")
                )
        return late

    def close(self) -> list[ItemRecord]:
        """End the batch: every item read and not finished (in flight or not) is ``skipped``.

        Returns:
            Those items, to store.
        """
        left = [entry.record for entry in self._in_flight.values()]
        left += [*self._queue, *self._retry, *self._buffer]
        for record in left:
            record.status = "skipped"
        self.skipped += len(left)
        self._in_flight.clear()
        self._queue.clear()
        self._retry = []
        self._buffer.clear()
        self._current = None
        self.closed = True
        return left

    # -- what it reports ---------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Items running now."""
        return len(self._in_flight)

    @property
    def total(self) -> int | None:
        """Items in all, once ``items()`` is exhausted (or the batch is over); else None."""
        return self.fed if self.source_done or self.closed else None

    def progress(self) -> float:
        """The share of items finished (completed, failed or skipped).

        Until ``items()`` is exhausted the total is not known: the share of the
        items read so far, at most 0.99.
        """
        done = self.completed + self.failed + self.skipped
        if self.total is not None:
            return round(done / self.total, 4) if self.total else 1.0
        return round(min(done / self.fed, 0.99), 4) if self.fed else 0.0

    def summary(self) -> dict[str, Any]:
        """The batch's fields of the status document; also the ``items`` step's checkpoint."""
        current = None
        if self._current is not None:
            current = {
                "number": self._current, "items": self._batch_items, "round": self._round,
                "completed": self._batch_done, "failed": self._batch_failed,
                "in_flight": len(self._in_flight),
            }  # fmt: skip
        return {
            "total_items": self.total, "completed_items": self.completed,
            "failed_items": self.failed, "skipped_items": self.skipped,
            "current_batch": self._current, "batches": self.batches,
            "batch_size": self.spec.batch_size, "batch": current, "exhausted": self.exhausted,
        }  # fmt: skip

    def _outcome(self) -> tuple[str, Any, dict[str, Any] | None]:
        summary = {
            "total_items": self.fed, "completed_items": self.completed,
            "failed_items": self.failed, "skipped_items": self.skipped + self._left(),
        }  # fmt: skip
        listed = {"failed": list(self.failures), "failed_listed": len(self.failures)}
        if self.source_error is not None:
            error = dict(self.source_error)
            error["details"] = {**(error.get("details") or {}), **summary, **listed}
            error["message"] = f"items() raised after {self.fed} items: {error['message']}"
            return "failed", None, error
        policy = self.spec.fail_policy
        failed_share = self.failed / self.fed if self.fed else 0.0
        if self.stopping == "fail_fast" or (
            isinstance(policy, float) and self.failed and failed_share >= policy
        ):
            first = self.failures[0] if self.failures else None
            why = (
                f"item {first['index']} failed: {first['error'].get('message')}"
                if self.stopping == "fail_fast" and first
                else f"{self.failed} of {self.fed} items failed, at least the "
                f"fail_policy's {policy:g}"
            )
            return "failed", None, {
                "error_type": "BatchFailed", "error_code": "items_failed",
                "message": f"the batch failed: {why}", "details": {**summary, **listed},
                "recoverable": False, "attempt": 1, "at": 0.0,
            }  # fmt: skip
        return "completed", {**summary, **listed}, None

    def _left(self) -> int:
        return len(self._queue) + len(self._retry) + len(self._buffer)


class ItemTimeout(TimeoutError):
    """An item's attempt ran past ``item_timeout`` (or sent no heartbeat for ``stuck_after``)."""


def batch_fields(summary: Mapping[str, Any] | None) -> dict[str, Any]:
    """The fields a batch adds to its status document, from its plan's `BatchPlan.summary`."""
    fields: dict[str, Any] = {
        "total_items": None, "completed_items": 0, "failed_items": 0, "skipped_items": 0,
        "current_batch": None, "batches": 0, "batch": None,
    }  # fmt: skip
    if summary:
        fields.update({key: summary.get(key, value) for key, value in fields.items()})
        fields["batch_size"] = summary.get("batch_size")
    return fields
