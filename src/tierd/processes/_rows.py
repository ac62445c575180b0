"""What a process store's rows mean: records to rows and back, filters.

`tierd.processes._sqlite` and `tierd.processes._postgres` keep the same
tables with the same columns in the same order, so turning a record into
the values of a row, a row back into a record, and a page's filters into a
WHERE clause are the same for both. Everything here is pure (no connection,
no I/O); each store keeps its own SQL and its own reads and writes. A
helper that writes SQL takes the store's placeholder (``?`` or ``%s``).
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any, Final

from ._lifecycle import TERMINAL
from ._record import ItemRecord, ProcessRecord, StepRecord
from ._store import Finished, ScheduleFire, pack, unpack

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

PROCESS_COLUMNS: Final = (
    "id, kind, status, priority, key, step_names, params, result, error, current_step, "
    "correlation, created_at, started_at, finished_at, seq"
)
"""The columns of ``processes`` a record is read from, in the order `process_record` takes."""
STEP_COLUMNS: Final = (
    "process_id, name, status, progress, note, attempts, errors, input, output, checkpoint, "
    "started_at, finished_at, duration, cpu"
)
"""The columns of ``steps`` a step is read from, in the order `add_steps` takes."""


def pack_some(value: Any) -> bytes | None:
    """``value`` packed (`pack`), or None for None.

    Raises:
        TypeError: the value is not msgpack-able.
    """
    return None if value is None else pack(value)


# -- records to rows -----------------------------------------------------------


def process_row(record: ProcessRecord, owner: str | None) -> tuple[Any, ...]:
    """The values of a new ``processes`` row: `PROCESS_COLUMNS`, then owner and lease_at.

    A running process is ``owner``'s, leased from its creation; any other has no owner.

    Raises:
        TypeError: the params or the correlation are not msgpack-able.
    """
    running = record.status == "running"
    return (
        record.process_id, record.kind, record.status, record.priority, record.key,
        pack(list(record.steps)), pack(record.params), None, None, None,
        pack(record.correlation), record.created_at, record.started_at, None, record.seq,
        owner if running else None, record.created_at if running else None,
    )  # fmt: skip


def update_row(record: ProcessRecord) -> tuple[Any, ...]:
    """The values of a save's ``processes`` update.

    In order: status, result, error, current_step, started_at, finished_at, seq, then the id.

    Raises:
        TypeError: the result or the error is not msgpack-able.
    """
    return (
        record.status, pack(record.result), pack(record.error),
        record.current_step, record.started_at, record.finished_at, record.seq,
        record.process_id,
    )  # fmt: skip


def event_row(process_id: str, event: Mapping[str, Any]) -> tuple[Any, ...]:
    """The values of an ``events`` row: process_id, seq, type, at, data.

    ``data`` is the event's other fields, packed, or None if it has none.

    Raises:
        TypeError: a field is not msgpack-able.
    """
    data = {k: v for k, v in event.items() if k not in {"type", "at", "seq"}}
    return (process_id, event["seq"], event["type"], event["at"], pack(data) if data else None)


def step_row(record: ProcessRecord, position: int, step: StepRecord) -> tuple[Any, ...]:
    """The values of a ``steps`` row: the step at ``position`` of ``record``.

    Raises:
        TypeError: the step's errors, input, output or checkpoint are not msgpack-able.
    """
    return (
        record.process_id, position, step.name, record.kind, step.status, step.progress,
        step.note, step.attempts, pack(step.errors) if step.errors else None,
        pack(step.input), pack(step.output), pack(step.checkpoint),
        step.started_at, step.finished_at, step.duration, step.cpu,
    )  # fmt: skip


def step_rows(record: ProcessRecord, names: Iterable[str]) -> list[tuple[Any, ...]]:
    """The ``steps`` rows of the steps ``names`` of ``record`` (`step_row`), in that order.

    Raises:
        ValueError: a name is not one of the record's steps.
        TypeError: a step's value is not msgpack-able.
    """
    order = list(record.steps)
    return [step_row(record, order.index(name), record.steps[name]) for name in names]


def new_item_rows(process_id: str, items: Iterable[ItemRecord]) -> list[tuple[Any, ...]]:
    """The values of new ``items`` rows: process_id, idx, item, status, attempts, error, result.

    Raises:
        TypeError: an item, error or result is not msgpack-able.
    """
    return [
        (process_id, one.index, pack(one.item), one.status, one.attempts,
         pack_some(one.error), pack_some(one.result))
        for one in items
    ]  # fmt: skip


def item_state_rows(process_id: str, items: Iterable[ItemRecord]) -> list[tuple[Any, ...]]:
    """The values of ``items`` updates: status, attempts, error, result, then process_id, idx.

    Raises:
        TypeError: an error or a result is not msgpack-able.
    """
    return [
        (one.status, one.attempts, pack_some(one.error), pack_some(one.result),
         process_id, one.index)
        for one in items
    ]  # fmt: skip


def requeued(
    record: ProcessRecord, from_step: int, now: float
) -> tuple[list[tuple[Any, ...]], dict[str, Any]]:
    """Put a finished ``record`` back to pending from step ``from_step``, in place.

    Steps before ``from_step`` that completed are kept; every other step is
    reset (its attempts kept; step ``from_step`` keeps its input too). The
    record loses its result, error, finish time and current step, and its
    seq rises by one.

    Returns:
        The ``steps`` rows of the reset steps, and the ``process_retried`` event.

    Raises:
        TypeError: a kept input is not msgpack-able.
    """
    names = list(record.steps)
    rows = []
    for position, name in enumerate(names):
        step = record.steps[name]
        if position < from_step and step.status == "completed":
            continue
        keep_input = step.input
        record.steps[name] = StepRecord(name, attempts=step.attempts)
        if position == from_step:
            record.steps[name].input = keep_input
        rows.append(step_row(record, position, record.steps[name]))
    record.status, record.result, record.error = "pending", None, None
    record.finished_at, record.current_step = None, None
    record.seq += 1
    event = {"type": "process_retried", "at": now, "seq": record.seq,
             "from_step": names[from_step]}  # fmt: skip
    return rows, event


# -- rows to records -----------------------------------------------------------


def process_record(row: Sequence[Any]) -> ProcessRecord:
    """The record of a ``processes`` row (`PROCESS_COLUMNS`), its steps not yet read.

    Each step is a fresh `StepRecord`; `add_steps` fills in those that have a row.
    """
    (process_id, kind, status, priority, key, step_names, params, result, error,
     current, correlation, created_at, started_at, finished_at, seq) = row  # fmt: skip
    return ProcessRecord(
        process_id, kind, unpack(params),
        {name: StepRecord(name) for name in unpack(step_names)},
        status=status, priority=priority, key=key, result=unpack(result),
        error=unpack(error), current_step=current, created_at=created_at,
        started_at=started_at, finished_at=finished_at,
        correlation=unpack(correlation) or {}, seq=seq,
    )  # fmt: skip


def process_records(rows: Iterable[Sequence[Any]]) -> dict[str, ProcessRecord]:
    """The records of ``processes`` rows (`process_record`) by process id, in row order."""
    records: dict[str, ProcessRecord] = {}
    for row in rows:
        record = process_record(row)
        records[record.process_id] = record
    return records


def add_steps(records: Mapping[str, ProcessRecord], rows: Iterable[Sequence[Any]]) -> None:
    """Put the steps of ``steps`` rows (`STEP_COLUMNS`) into their processes' records."""
    for row in rows:
        (process_id, name, status, progress, note, attempts, errors, data_in, data_out,
         checkpoint, started_at, finished_at, duration, cpu) = row  # fmt: skip
        records[process_id].steps[name] = StepRecord(
            name, status, progress, note, attempts, unpack(errors) or [],
            unpack(data_in), unpack(data_out), unpack(checkpoint),
            started_at, finished_at, duration, cpu,
        )  # fmt: skip


def history_event(row: Sequence[Any]) -> dict[str, Any]:
    """The event of an ``events`` row read as (seq, type, at, data)."""
    seq, kind, at, data = row
    return {"type": kind, "at": at, "seq": seq, **(unpack(data) or {})}


def item_record(row: Sequence[Any]) -> ItemRecord:
    """The item of an ``items`` row read as (idx, item, status, attempts, error, result)."""
    index, item, status, attempts, error, result = row
    return ItemRecord(index, unpack(item), status, attempts, unpack(error), unpack(result))


def schedule_fire(row: Sequence[Any]) -> ScheduleFire:
    """The fire of a ``schedule_fires`` row.

    The row is read as (schedule, fire_at, outcome, recorded_at, process_id,
    message_id, detail, manual).
    """
    name, at, outcome, recorded, pid, mid, detail, manual = row
    return ScheduleFire(name, at, outcome, recorded, pid, mid, detail, manual=bool(manual))


def finished(rows: Iterable[Sequence[Any]], steps: Iterable[Sequence[Any]]) -> list[Finished]:
    """The finished processes of `ProcessStore.finished_since`, terminal ones only.

    Args:
        rows: ``processes`` rows read as (id, kind, status, started_at, finished_at).
        steps: completed ``steps`` rows read as (process_id, name, duration);
            a step with no duration is left out.
    """
    step_times: dict[str, dict[str, float]] = collections.defaultdict(dict)
    for process_id, name, duration in steps:
        if duration is not None:
            step_times[process_id][name] = duration
    return [
        Finished(
            kind,
            status,
            None if started is None else max(finished_at - started, 0.0),
            step_times.get(process_id, {}),
        )
        for process_id, kind, status, started, finished_at in rows
        if status in TERMINAL
    ]


def mean_durations(rows: Iterable[Sequence[Any]]) -> dict[str, float]:
    """Each step's mean duration from (name, mean) rows; a step with no mean is left out."""
    return {name: float(mean) for name, mean in rows if mean is not None}


# -- filters -------------------------------------------------------------------


def list_filters(
    mark: str,
    *,
    status: str | None = None,
    kind: str | None = None,
    since: float | None = None,
    until: float | None = None,
    cursor: str | None = None,
) -> tuple[str, list[Any]]:
    """The WHERE clause of `ProcessStore.list`'s filters ("" for none) and its values.

    Args:
        mark: the store's placeholder, ``?`` or ``%s``.
        status: only processes of this status.
        kind: only processes of this kind.
        since: only processes created at or after this.
        until: only processes created before this.
        cursor: only processes submitted before the one a page ended with (its ``n``).

    Raises:
        ValueError: the cursor is not one a page returned.
    """
    clauses: list[str] = []
    values: list[Any] = []
    for column, value in (("status", status), ("kind", kind)):
        if value is not None:
            clauses.append(f"{column} = {mark}")
            values.append(value)
    if since is not None:
        clauses.append(f"created_at >= {mark}")
        values.append(since)
    if until is not None:
        clauses.append(f"created_at < {mark}")
        values.append(until)
    if cursor is not None:
        if not cursor.isdigit():
            raise ValueError(f"bad cursor {cursor[:40]!r}: pass back the one a page returned")
        clauses.append(f"n < {mark}")
        values.append(int(cursor))
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), values


def page_rows(rows: Sequence[Sequence[Any]], limit: int) -> tuple[list[Sequence[Any]], str | None]:
    """A page of ``limit + 1`` rows read as (n, `PROCESS_COLUMNS`…), newest first.

    Returns:
        The page's ``processes`` rows without ``n`` (at most ``limit``), and
        the cursor of the next page (None if this is the last).
    """
    more = len(rows) > limit
    kept = rows[:limit]
    return [row[1:] for row in kept], (str(kept[-1][0]) if more and kept else None)
