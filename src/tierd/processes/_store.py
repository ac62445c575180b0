"""The `ProcessStore` seam: where processes, their steps and their events are kept.

`tierd.processes._sqlite.SqliteProcessStore` is the default (one runtime, one
file); `tierd.processes._postgres.PostgresProcessStore` is shared by several
runtimes. Both pass the same behaviour suite (``tests/process/test_store.py``).

Schedules keep their fires and their paused state here too, so that every
runtime sharing a store agrees on them: `claim_fire` is the one insert of a
fire under its unique (schedule, fire time) key, and only the runtime whose
insert wins runs the fire.

Two kinds of writes:

- *transactions* that read and then write (`create` with its idempotency
  key, `claim`, `cancel_pending`, `requeue`, `prune`) run at once in the
  caller's thread and are committed when they return;
- *saves* of a running process's transitions (`save`) are queued and
  committed in groups by the store's writer; the caller waits on the
  returned `Outcome` (or on `barrier`) before it lets anyone see the change.

Ownership: a running or paused process has an owner (a runtime's name) and
a lease, renewed by the owner (`renew`); a process whose lease has not been
renewed for ``stuck_after`` seconds is adopted by another runtime
(`claim_expired`), so a runtime that died has its processes finished by the
others. Values are kept as msgpack (`pack`, `unpack`).
"""

from __future__ import annotations

import builtins  # noqa: TC003 - `list` is a method name here; annotations need the type
import dataclasses
from typing import TYPE_CHECKING, Any, Final, Protocol

import msgpack

from ..errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from .._outcome import Outcome
    from ._record import ItemRecord, ProcessRecord


BATCH_LIMIT: Final = 4096
"""The most statements one group commit carries."""


def pack(value: Any) -> bytes:
    """A value as stored: msgpack.

    Raises:
        TypeError: the value is not msgpack-able.
    """
    try:
        return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]
    except (TypeError, ValueError, OverflowError) as error:
        raise TypeError(f"not storable (msgpack-able values only): {error}") from None


def unpack(blob: bytes | None) -> Any:
    """A stored value back (None stays None)."""
    return None if blob is None else msgpack.unpackb(blob, raw=False, strict_map_key=False)


def newer_schema(found: int, known: int) -> ConfigError:
    """The error for a store whose schema a newer tierd wrote."""
    return ConfigError(
        f"[processes] store: its schema is version {found}, newer than this tierd knows "
        f"({known}); upgrade tierd (a newer tierd migrated this store)"
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing, newest first."""

    items: builtins.list[ProcessRecord]
    cursor: str | None
    """Pass it back to get the next page; None: this was the last one."""


FIRE_OUTCOMES: Final = ("firing", "queued", "fired", "skipped", "failed")
"""A fire's outcome: ``firing`` (claimed, not yet run: a runtime that stops there never
runs it), ``queued`` (held until the schedule's last run ends), ``fired``, ``skipped``
(the last run was unfinished, or the schedule's process kind is stopping), ``failed``
(the submit or the send was refused)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ScheduleFire:
    """One fire of a schedule, as the store keeps it."""

    schedule: str
    fire_at: float
    """The fire time (epoch seconds): with ``schedule``, the fire's unique key."""
    outcome: str
    """One of `FIRE_OUTCOMES`."""
    recorded_at: float
    """When the outcome was last written (epoch seconds)."""
    process_id: str | None = None
    """The process the fire submitted."""
    message_id: str | None = None
    """The notification the fire sent."""
    detail: str | None = None
    """Why it was skipped or failed."""
    manual: bool = False
    """True for a ``run-now`` fire (its fire time is when it was asked for)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Finished:
    """One finished process, as `ProcessStore.finished_since` reports it for statistics."""

    kind: str
    status: str
    duration: float | None
    steps: dict[str, float]
    """Each completed step's duration, in seconds."""


class ProcessStore(Protocol):
    """Keeps processes durably. Every method may be called from any thread."""

    def create(
        self,
        record: ProcessRecord,
        events: Sequence[dict[str, Any]],
        *,
        owner: str | None = None,
    ) -> tuple[str, bool]:
        """Insert a process (pending, or running if it starts at once) and its events, at once.

        A running one is owned by ``owner``, its lease renewed at its ``created_at``.

        Returns:
            ``(id, True)``, or ``(existing id, False)`` when ``record.key`` is
            used already by an unfinished process of the same kind.

        Raises:
            Rejected: the store cannot be written (disk full...); nothing was kept.
        """

    def save(
        self, record: ProcessRecord, steps: Sequence[str], event: dict[str, Any] | None
    ) -> Outcome[Exception | None]:
        """Queue the process row, the named steps' rows and one event; return the commit.

        The values are read now, so the caller may change the record afterwards.
        """

    def barrier(self) -> Outcome[Exception | None]:
        """The commit of every save queued so far."""

    def get(self, process_id: str) -> ProcessRecord | None:
        """The process as committed, or None if there is none."""

    def list(
        self,
        *,
        status: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """Processes newest first (by submit order), filtered, one page at a time."""

    def history(self, process_id: str) -> builtins.list[dict[str, Any]]:
        """The process's events in seq order (empty if there is no such process)."""

    def claim(self, kind: str, limit: int, owner: str, now: float) -> builtins.list[ProcessRecord]:
        """Take up to ``limit`` pending processes of ``kind`` by (priority, submit order).

        Each is marked running and owned by ``owner`` (its lease renewed at
        ``now``), with its ``process_started`` event, in one transaction; two
        runtimes never take the same process.
        """

    def renew(self, owner: str, now: float) -> int:
        """Renew the lease of every process ``owner`` runs (running or paused) at ``now``.

        Returns:
            How many leases were renewed.
        """

    def claim_expired(
        self, owner: str, kinds: Iterable[str], stale_before: float, now: float, limit: int
    ) -> builtins.list[ProcessRecord]:
        """Adopt up to ``limit`` running or paused processes of ``kinds`` whose lease lapsed.

        A lease lapsed when its owner (another runtime, or none) last renewed it
        before ``stale_before``. Each is owned by ``owner`` from now, its lease
        renewed at ``now``, in one transaction; the caller recovers them.
        """

    def watch(self, callback: Callable[[str | None], None]) -> None:
        """Call ``callback(kind)`` from the store's thread when pending work may be waiting.

        For work another runtime submitted (``kind``), or ``None`` now and then
        (any kind: a notification may have been lost). A store that one runtime
        has to itself never calls it.
        """

    def cancel_pending(self, process_id: str, now: float) -> ProcessRecord | None:
        """Cancel a process that is pending (or paused and not running here).

        Returns:
            The cancelled record, or None if it was not pending or paused.
        """

    def requeue(
        self, process_id: str, from_step: int, now: float, new_params: Any = None
    ) -> ProcessRecord | None:
        """Put a finished process back to pending, from step position ``from_step`` on.

        The steps before it stay completed; that step gets its last input.

        Returns:
            The record, or None if the process is not finished.
        """

    def unfinished(self, owner: str) -> builtins.list[ProcessRecord]:
        """Processes ``owner`` ran (running or paused) as the store saw them last: to recover."""

    def counts(self) -> dict[tuple[str, str], int]:
        """Processes pending, running and paused, by (kind, status)."""

    def step_durations(self, kind: str, limit: int = 1000) -> dict[str, float]:
        """The mean duration of each step of ``kind`` over its last ``limit`` completions."""

    def finished_since(self, since: float, kind: str | None = None) -> builtins.list[Finished]:
        """Processes finished at or after ``since`` (epoch seconds), for statistics."""

    def prune(self, cutoffs: Mapping[str, float], batch: int = 1000) -> int:
        """Delete up to ``batch`` finished processes older than their status's cutoff.

        Args:
            cutoffs: a finished status and the epoch seconds before which its
                processes go (finished before the cutoff).
            batch: the most processes deleted in this call (with their steps and events).

        Returns:
            How many were deleted (their items go with them); call again while it
            returns ``batch``.
        """

    def add_items(self, process_id: str, items: Sequence[ItemRecord]) -> Outcome[Exception | None]:
        """Queue the rows of new items of a batch (indexes it has not stored yet).

        Queued with the saves, in order, in the same group commit; the values
        are read now. An item that is not msgpack-able raises `TypeError` and
        nothing is queued.
        """

    def save_items(self, process_id: str, items: Sequence[ItemRecord]) -> Outcome[Exception | None]:
        """Queue the state of stored items: status, attempts, error and result (not the item).

        Queued with the saves, in order; the values are read now. A result or
        error that is not msgpack-able raises `TypeError` and nothing is queued.
        """

    def items(
        self,
        process_id: str,
        *,
        statuses: Sequence[str] | None = None,
        after: int = -1,
        limit: int = 100,
    ) -> builtins.list[ItemRecord]:
        """Up to ``limit`` items of a batch with an index above ``after``, by index.

        Args:
            process_id: the batch.
            statuses: only items with one of these statuses; None: every item.
            after: the index the last page ended with (-1: from the start).
            limit: the page size.
        """

    def item_counts(self, process_id: str) -> dict[str, int]:
        """A batch's items by status (statuses with no item are left out)."""

    def claim_fire(
        self, schedule: str, fire_at: float, now: float, *, manual: bool = False
    ) -> bool:
        """Record a fire as ``firing`` unless (schedule, fire_at) is recorded already.

        The insert is committed before this returns; of several runtimes
        claiming one fire, exactly one gets True and runs it.

        Returns:
            True: this caller claimed the fire; False: it was claimed before.
        """

    def finish_fire(
        self,
        schedule: str,
        fire_at: float,
        outcome: str,
        now: float,
        *,
        process_id: str | None = None,
        message_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Write a claimed fire's outcome (one of `FIRE_OUTCOMES`), committed on return."""

    def fires(
        self, schedule: str, *, limit: int = 20, outcome: str | None = None
    ) -> builtins.list[ScheduleFire]:
        """The schedule's fires, latest fire time first, of one outcome or all."""

    def prune_fires(self, before: float, batch: int = 1000) -> int:
        """Delete up to ``batch`` fires recorded before ``before``, but each schedule's latest.

        Returns:
            How many were deleted; call again while it returns ``batch``.
        """

    def set_schedule_paused(self, schedule: str, now: float, *, paused: bool) -> None:
        """Pause or resume a schedule for every runtime sharing the store, committed on return."""

    def paused_schedules(self) -> set[str]:
        """The names of the schedules paused now."""

    def close(self) -> None:
        """Commit what is queued and close; later calls fail."""
