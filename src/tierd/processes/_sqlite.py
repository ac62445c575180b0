"""`SqliteProcessStore`: the default `ProcessStore`, one SQLite file in WAL mode.

Saves are batched like the level journal's (`tierd.orchestrators._journal`):
a save is a list of statements put in the current batch under a short lock;
one writer thread takes whole batches, runs each in one transaction and
commits it, and every save of a batch waits on the same `Outcome`.
Transactions that read and then write (`create` with a key, `claim`,
`cancel_pending`, `requeue`, `prune`) run in the caller's thread on its own
connection with ``BEGIN IMMEDIATE``, so no other writer slips in between
the read and the write. Readers have a connection per thread; WAL lets them
read while the writer writes.

Tables: ``processes`` (the current row of each process; ``n`` is the submit
order), ``steps`` (one row per step that has started), ``events``
(append-only, ``seq`` rising by one per process), ``items`` (a batch's
items, by process and index; written in chunks with ``executemany``),
``schedule_fires`` (unique per schedule and fire time: the insert that wins
runs the fire) and ``schedule_state`` (which schedules are paused). The schema
is versioned (`MIGRATIONS`, recorded in ``schema_version``) and migrated at
open. Only one runtime opens a file at a time (a lock file), so every
unfinished process in it is that runtime's; leases are kept as in PostgreSQL
all the same.
"""

from __future__ import annotations

import builtins  # `list` is a method name here; annotations need the type
import collections
import contextlib
import fcntl
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .._outcome import Outcome
from ..errors import ConfigError, Rejected
from ..logging import get_logger
from ._lifecycle import TERMINAL, UNFINISHED
from ._rows import (
    PROCESS_COLUMNS,
    STEP_COLUMNS,
    add_steps,
    event_row,
    finished,
    history_event,
    item_record,
    item_state_rows,
    list_filters,
    mean_durations,
    new_item_rows,
    page_rows,
    process_records,
    process_row,
    requeued,
    schedule_fire,
    step_rows,
    update_row,
)
from ._store import BATCH_LIMIT, FIRE_OUTCOMES, Page, newer_schema

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from ._record import ItemRecord, ProcessRecord
    from ._store import Finished, ScheduleFire

_SCHEMA_V1: Final = """
CREATE TABLE IF NOT EXISTS processes (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL,
    key TEXT,
    step_names BLOB NOT NULL,
    params BLOB,
    result BLOB,
    error BLOB,
    current_step TEXT,
    correlation BLOB,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    seq INTEGER NOT NULL,
    owner TEXT);
CREATE INDEX IF NOT EXISTS processes_pending ON processes (kind, priority, n)
    WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS processes_by_status ON processes (status, n);
CREATE INDEX IF NOT EXISTS processes_by_kind ON processes (kind, n);
CREATE INDEX IF NOT EXISTS processes_by_kind_status ON processes (kind, status, n);
CREATE INDEX IF NOT EXISTS processes_created ON processes (created_at);
CREATE INDEX IF NOT EXISTS processes_retention ON processes (status, finished_at)
    WHERE finished_at IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS processes_key ON processes (kind, key)
    WHERE key IS NOT NULL AND status IN ('pending', 'running', 'paused');
CREATE TABLE IF NOT EXISTS steps (
    process_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    progress REAL NOT NULL,
    note TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    errors BLOB,
    input BLOB,
    output BLOB,
    checkpoint BLOB,
    started_at REAL,
    finished_at REAL,
    duration REAL,
    cpu REAL,
    PRIMARY KEY (process_id, position)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS steps_durations ON steps (kind, name, finished_at)
    WHERE status = 'completed';
CREATE TABLE IF NOT EXISTS events (
    process_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    at REAL NOT NULL,
    data BLOB,
    PRIMARY KEY (process_id, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS items (
    process_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    item BLOB,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    error BLOB,
    result BLOB,
    PRIMARY KEY (process_id, idx)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_by_status ON items (process_id, status, idx);
CREATE TABLE IF NOT EXISTS schedule_fires (
    schedule TEXT NOT NULL,
    fire_at REAL NOT NULL,
    process_id TEXT,
    outcome TEXT NOT NULL,
    recorded_at REAL NOT NULL,
    PRIMARY KEY (schedule, fire_at)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS schedule_state (
    schedule TEXT PRIMARY KEY,
    paused INTEGER NOT NULL,
    changed_at REAL NOT NULL) WITHOUT ROWID;
"""
MIGRATIONS: Final[tuple[tuple[int, str, str], ...]] = (
    (1, "processes, steps, events and schedule fires", _SCHEMA_V1),
    (
        2,
        "leases: when the owner last renewed its hold on a running process",
        "ALTER TABLE processes ADD COLUMN lease_at REAL;"
        "CREATE INDEX processes_leases ON processes (owner, lease_at) "
        "WHERE status IN ('running', 'paused');",
    ),
)
"""(version, what it does, SQL): each applied once, in order, in one transaction."""
SCHEMA_VERSION: Final = MIGRATIONS[-1][0]
"""The schema this code reads and writes."""
_FIRE_COLUMNS: Final = {
    "message_id": "TEXT", "detail": "TEXT", "manual": "INTEGER NOT NULL DEFAULT 0"
}  # fmt: skip
"""Columns of ``schedule_fires`` added after it was first declared (added to older files)."""
_INSERT: Final = (
    f"INSERT INTO processes ({PROCESS_COLUMNS}, owner, lease_at) VALUES ({', '.join('?' * 17)})"  # noqa: S608 - fixed names
)
_UPDATE: Final = (
    "UPDATE processes SET status = ?, result = ?, error = ?, current_step = ?, "
    "started_at = ?, finished_at = ?, seq = ? WHERE id = ?"
)
_STEP: Final = (
    "INSERT OR REPLACE INTO steps (process_id, position, name, kind, status, progress, note, "
    "attempts, errors, input, output, checkpoint, started_at, finished_at, duration, cpu) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_EVENT: Final = "INSERT INTO events (process_id, seq, type, at, data) VALUES (?, ?, ?, ?, ?)"
_ITEM: Final = (
    "INSERT INTO items (process_id, idx, item, status, attempts, error, result) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_ITEM_STATE: Final = (
    "UPDATE items SET status = ?, attempts = ?, error = ?, result = ? "
    "WHERE process_id = ? AND idx = ?"
)


_Job = Callable[[sqlite3.Connection], Any]
"""A read-then-write the writer runs inside its transaction (under a savepoint)."""
_Write = tuple[str, tuple[Any, ...] | builtins.list[tuple[Any, ...]]] | tuple[_Job, Outcome[Any]]
"""One statement and its values (a list of rows: ``executemany``), or a job and its answer."""


class _Batch:
    """What one group commit carries, in order: plain writes and jobs with their outcomes."""

    __slots__ = ("commit", "items", "size")

    def __init__(self) -> None:
        self.items: builtins.list[_Write] = []
        self.size = 0
        self.commit: Outcome[Exception | None] = Outcome()


class SqliteProcessStore:
    """The process store in one SQLite file; a `ProcessStore`.

    Every write goes through one writer thread and one connection, so writers
    never wait on each other's locks: saves are queued, and the read-then-write
    transactions (`create`, `claim`, `cancel_pending`, `requeue`, `prune`) are
    jobs the writer runs in order inside its ``BEGIN IMMEDIATE`` transaction,
    each under a savepoint (a failing job is rolled back alone); their callers
    wait for the group commit and get the job's answer.

    Args:
        path: the database file; its folder is made if missing.
        name: the runtime's name, for logs.

    Raises:
        ConfigError: the file cannot be made, opened or locked; names ``[processes] store``.
    """

    def __init__(self, path: Path, *, name: str = "tierd") -> None:
        self.path = path
        self.log = get_logger(runtime=name, component="process_store")
        self._guard = threading.Condition(threading.Lock())
        self._batches: collections.deque[_Batch] = collections.deque()
        self._writing: _Batch | None = None
        self._closed = False
        self._local = threading.local()
        self._connections: builtins.list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self.commits = 0
        """Group commits so far."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_file = path.with_name(path.name + ".lock").open("a")
        except OSError as error:
            raise _unusable(path, error.strerror or str(error)) from None
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.close()
            raise _unusable(path, "another running tierd uses this process store") from None
        try:
            self._writer_db = self._connect()
            self.schema_version = _migrate(self._writer_db)
            _add_fire_columns(self._writer_db)
        except ConfigError:
            self._lock_file.close()
            raise
        except sqlite3.Error as error:
            self._lock_file.close()
            raise _unusable(path, str(error)) from None
        self._thread = threading.Thread(
            target=self._write_forever, name=f"tierd-process-store-{name}", daemon=True
        )
        self._thread.start()

    @staticmethod
    def schema_of(path: Path) -> int:
        """The schema version of the file at ``path``; 0 if it has none (or no file)."""
        if not path.exists():
            return 0
        try:
            with contextlib.closing(sqlite3.connect(path)) as db:
                tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
                if "schema_version" in tables:
                    (found,) = db.execute("SELECT max(version) FROM schema_version").fetchone()
                    return int(found or 0)
                return 1 if "processes" in tables else 0
        except sqlite3.Error:
            return 0

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        with self._connections_lock:
            self._connections.append(db)
        return db

    def _db(self) -> sqlite3.Connection:
        """This thread's connection, for reads."""
        if self._closed:
            raise Rejected("the process store is closed (the runtime is stopping)")
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
        return db

    # -- writes ------------------------------------------------------------------

    def _run(self, job: _Job) -> Any:
        """Run ``job`` in the writer's next transaction; return its answer once committed.

        Raises:
            Rejected: the store is closed, or the transaction could not be committed.
            Exception: whatever the job raised (its savepoint was rolled back).
        """
        answer: Outcome[Any] = Outcome()
        commit = self._enqueue([(job, answer)])
        error = commit.wait()
        if error is not None:
            raise error
        result = answer.wait()
        if isinstance(result, _Failed):
            raise result.error
        return result

    def create(
        self,
        record: ProcessRecord,
        events: Sequence[dict[str, Any]],
        *,
        owner: str | None = None,
    ) -> tuple[str, bool]:
        """Insert a process and its events (see `ProcessStore.create`)."""
        row = process_row(record, owner)
        event_rows = [event_row(record.process_id, event) for event in events]

        def insert(db: sqlite3.Connection) -> tuple[str, bool]:
            if record.key is not None:
                found = db.execute(
                    "SELECT id FROM processes WHERE kind = ? AND key = ? "
                    "AND status IN ('pending', 'running', 'paused')",
                    (record.kind, record.key),
                ).fetchone()
                if found is not None:
                    return str(found[0]), False
            db.execute(_INSERT, row)
            db.executemany(_EVENT, event_rows)
            return record.process_id, True

        result: tuple[str, bool] = self._run(insert)
        return result

    def save(
        self, record: ProcessRecord, steps: Sequence[str], event: dict[str, Any] | None
    ) -> Outcome[Exception | None]:
        """Queue the process row, some steps and an event (see `ProcessStore.save`).

        Raises:
            TypeError: a value is not msgpack-able (nothing is queued).
        """
        writes: builtins.list[_Write] = [(_UPDATE, update_row(record))]
        writes.extend((_STEP, row) for row in step_rows(record, steps))
        if event is not None:
            writes.append((_EVENT, event_row(record.process_id, event)))
        return self._enqueue(writes)

    def _enqueue(self, items: builtins.list[_Write]) -> Outcome[Exception | None]:
        with self._guard:
            if self._closed:
                return Outcome.of(Rejected("the process store is closed"))
            if not self._batches or self._batches[-1].size >= BATCH_LIMIT:
                self._batches.append(_Batch())
                self._guard.notify()
            batch = self._batches[-1]
            batch.items.extend(items)
            batch.size += len(items)
            return batch.commit

    def barrier(self) -> Outcome[Exception | None]:
        """The commit of every save queued so far."""
        with self._guard:
            if self._batches:
                return self._batches[-1].commit
            if self._writing is not None:
                return self._writing.commit
        return Outcome.of(None)

    def _write_forever(self) -> None:
        db = self._writer_db
        while True:
            with self._guard:
                while not self._batches and not self._closed:
                    self._guard.wait()
                if not self._batches:
                    return
                batch = self._writing = self._batches.popleft()
            answers: builtins.list[tuple[Outcome[Any], Any]] = []
            error: Exception | None = None
            try:
                db.execute("BEGIN IMMEDIATE")
                for item in batch.items:
                    if isinstance(item[0], str):
                        if isinstance(item[1], list):  # many rows of one statement
                            db.executemany(item[0], item[1])
                        else:
                            db.execute(item[0], item[1])
                    else:
                        job, outcome = item
                        answers.append((outcome, _job(db, job)))
                db.execute("COMMIT")
                self.commits += 1
            except sqlite3.Error as failure:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                self.log.error("process_store_write_failed", error=str(failure))
                error = Rejected(f"the process store cannot be written: {failure}")
            with self._guard:
                self._writing = None
            batch.commit.set(error)
            for outcome, answer in answers:
                outcome.set(answer)

    def claim(self, kind: str, limit: int, owner: str, now: float) -> builtins.list[ProcessRecord]:
        """Take pending processes of ``kind`` by (priority, submit order); mark them running."""
        if limit <= 0:
            return []

        def take(db: sqlite3.Connection) -> builtins.list[ProcessRecord]:
            ids = [
                row[0]
                for row in db.execute(
                    "SELECT id FROM processes WHERE status = 'pending' AND kind = ? "
                    "ORDER BY priority, n LIMIT ?",
                    (kind, limit),
                )
            ]
            if not ids:
                return []
            db.executemany(
                "UPDATE processes SET status = 'running', owner = ?, lease_at = ?, seq = seq + 1, "
                "started_at = COALESCE(started_at, ?) WHERE id = ?",
                [(owner, now, now, process_id) for process_id in ids],
            )
            records = self._read_many(db, ids)
            db.executemany(
                _EVENT,
                [
                    event_row(r.process_id, {"type": "process_started", "at": now, "seq": r.seq})
                    for r in records
                ],
            )
            return records

        result: builtins.list[ProcessRecord] = self._run(take)
        return result

    def renew(self, owner: str, now: float) -> int:
        """Renew the lease of every process ``owner`` runs (see `ProcessStore.renew`)."""

        def renew(db: sqlite3.Connection) -> int:
            return db.execute(
                "UPDATE processes SET lease_at = ? "
                "WHERE owner = ? AND status IN ('running', 'paused')",
                (now, owner),
            ).rowcount

        result: int = self._run(renew)
        return result

    def claim_expired(
        self, owner: str, kinds: Iterable[str], stale_before: float, now: float, limit: int
    ) -> builtins.list[ProcessRecord]:
        """Adopt processes whose owner's lease lapsed (see `ProcessStore.claim_expired`)."""
        kinds = sorted(kinds)
        if limit <= 0 or not kinds:
            return []

        def adopt(db: sqlite3.Connection) -> builtins.list[ProcessRecord]:
            marks = ", ".join("?" * len(kinds))
            ids = [
                row[0]
                for row in db.execute(
                    "SELECT id FROM processes WHERE status IN ('running', 'paused') "  # noqa: S608 - placeholders
                    f"AND kind IN ({marks}) AND owner IS NOT ? "
                    "AND COALESCE(lease_at, started_at, created_at) < ? ORDER BY n LIMIT ?",
                    (*kinds, owner, stale_before, limit),
                )
            ]
            db.executemany(
                "UPDATE processes SET owner = ?, lease_at = ? WHERE id = ?",
                [(owner, now, process_id) for process_id in ids],
            )
            return self._read_many(db, ids) if ids else []

        result: builtins.list[ProcessRecord] = self._run(adopt)
        return result

    def watch(self, callback: Callable[[str | None], None]) -> None:
        """Never calls ``callback``: one runtime has the file to itself, and knows its work."""
        del callback

    def cancel_pending(self, process_id: str, now: float) -> ProcessRecord | None:
        """Cancel a pending or paused process (see `ProcessStore.cancel_pending`)."""

        def cancel(db: sqlite3.Connection) -> ProcessRecord | None:
            changed = db.execute(
                "UPDATE processes SET status = 'cancelled', finished_at = ?, seq = seq + 1, "
                "current_step = NULL WHERE id = ? AND status IN ('pending', 'paused')",
                (now, process_id),
            ).rowcount
            if not changed:
                return None
            record = self._read(db, process_id)
            assert record is not None
            event = {"type": "process_cancelled", "at": now, "seq": record.seq}
            db.execute(_EVENT, event_row(process_id, event))
            return record

        result: ProcessRecord | None = self._run(cancel)
        return result

    def requeue(
        self, process_id: str, from_step: int, now: float, new_params: Any = None
    ) -> ProcessRecord | None:
        """Put a finished process back to pending from step ``from_step`` (see the protocol)."""

        def again(db: sqlite3.Connection) -> ProcessRecord | None:
            record = self._read(db, process_id)
            if record is None or record.status not in TERMINAL:
                return None
            rows, event = requeued(record, from_step, now)
            db.executemany(_STEP, rows)
            db.execute(
                "UPDATE processes SET status = 'pending', result = NULL, error = NULL, "
                "finished_at = NULL, current_step = NULL, owner = NULL, lease_at = NULL, seq = ? "
                "WHERE id = ?",
                (record.seq, process_id),
            )
            db.execute(_EVENT, event_row(process_id, event))
            return record

        result: ProcessRecord | None = self._run(again)
        return result

    def prune(self, cutoffs: Mapping[str, float], batch: int = 1000) -> int:
        """Delete up to ``batch`` finished processes older than their cutoffs."""

        def delete(db: sqlite3.Connection) -> int:
            ids: builtins.list[str] = []
            for status, cutoff in cutoffs.items():
                if len(ids) >= batch:
                    break
                ids += [
                    row[0]
                    for row in db.execute(
                        "SELECT id FROM processes WHERE status = ? AND finished_at IS NOT NULL "
                        "AND finished_at < ? LIMIT ?",
                        (status, cutoff, batch - len(ids)),
                    )
                ]
            for table in ("events", "steps", "items"):
                db.executemany(f"DELETE FROM {table} WHERE process_id = ?", [(i,) for i in ids])  # noqa: S608 - fixed names
            db.executemany("DELETE FROM processes WHERE id = ?", [(i,) for i in ids])
            return len(ids)

        result: int = self._run(delete)
        return result

    def add_items(self, process_id: str, items: Sequence[ItemRecord]) -> Outcome[Exception | None]:
        """Queue new item rows, one ``executemany`` (see `ProcessStore.add_items`).

        Raises:
            TypeError: an item is not msgpack-able (nothing is queued).
        """
        rows = new_item_rows(process_id, items)
        return self._enqueue([(_ITEM, rows)]) if rows else self.barrier()

    def save_items(self, process_id: str, items: Sequence[ItemRecord]) -> Outcome[Exception | None]:
        """Queue the new state of stored items, one ``executemany`` (see the protocol).

        Raises:
            TypeError: a result or an error is not msgpack-able (nothing is queued).
        """
        rows = item_state_rows(process_id, items)
        return self._enqueue([(_ITEM_STATE, rows)]) if rows else self.barrier()

    # -- schedules ---------------------------------------------------------------

    def claim_fire(
        self, schedule: str, fire_at: float, now: float, *, manual: bool = False
    ) -> bool:
        """Insert the fire as ``firing`` unless it is recorded already (see the protocol)."""

        def claim(db: sqlite3.Connection) -> bool:
            inserted = db.execute(
                "INSERT OR IGNORE INTO schedule_fires (schedule, fire_at, outcome, recorded_at, "
                "manual) VALUES (?, ?, 'firing', ?, ?)",
                (schedule, fire_at, now, int(manual)),
            ).rowcount
            return bool(inserted)

        result: bool = self._run(claim)
        return result

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
        """Write a claimed fire's outcome (see the protocol).

        Raises:
            ValueError: not one of `FIRE_OUTCOMES`.
        """
        if outcome not in FIRE_OUTCOMES:
            raise ValueError(f"unknown fire outcome {outcome!r}: one of {', '.join(FIRE_OUTCOMES)}")

        def finish(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE schedule_fires SET outcome = ?, recorded_at = ?, process_id = ?, "
                "message_id = ?, detail = ? WHERE schedule = ? AND fire_at = ?",
                (outcome, now, process_id, message_id, detail, schedule, fire_at),
            )

        self._run(finish)

    def fires(
        self, schedule: str, *, limit: int = 20, outcome: str | None = None
    ) -> builtins.list[ScheduleFire]:
        """The schedule's fires, latest fire time first."""
        query = (
            "SELECT schedule, fire_at, outcome, recorded_at, process_id, message_id, detail, "
            "manual FROM schedule_fires WHERE schedule = ?"
        )
        values: builtins.list[Any] = [schedule]
        if outcome is not None:
            query += " AND outcome = ?"
            values.append(outcome)
        rows = self._db().execute(f"{query} ORDER BY fire_at DESC LIMIT ?", [*values, limit])
        return [schedule_fire(row) for row in rows]

    def prune_fires(self, before: float, batch: int = 1000) -> int:
        """Delete up to ``batch`` fires recorded before ``before`` but each schedule's latest."""

        def delete(db: sqlite3.Connection) -> int:
            old = db.execute(
                "SELECT schedule, fire_at FROM schedule_fires AS f WHERE recorded_at < ? AND "
                "fire_at < (SELECT max(fire_at) FROM schedule_fires WHERE schedule = f.schedule) "
                "LIMIT ?",
                (before, batch),
            ).fetchall()
            db.executemany("DELETE FROM schedule_fires WHERE schedule = ? AND fire_at = ?", old)
            return len(old)

        result: int = self._run(delete)
        return result

    def set_schedule_paused(self, schedule: str, now: float, *, paused: bool) -> None:
        """Pause or resume a schedule for every runtime on this store."""

        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO schedule_state (schedule, paused, changed_at) "
                "VALUES (?, ?, ?)",
                (schedule, int(paused), now),
            )

        self._run(write)

    def paused_schedules(self) -> set[str]:
        """The schedules paused now."""
        rows = self._db().execute("SELECT schedule FROM schedule_state WHERE paused = 1")
        return {row[0] for row in rows}

    # -- reads -------------------------------------------------------------------

    def items(
        self,
        process_id: str,
        *,
        statuses: Sequence[str] | None = None,
        after: int = -1,
        limit: int = 100,
    ) -> builtins.list[ItemRecord]:
        """A page of a batch's items by index (see `ProcessStore.items`)."""
        query = "SELECT idx, item, status, attempts, error, result FROM items WHERE process_id = ?"
        values: builtins.list[Any] = [process_id]
        if statuses is not None:
            query += f" AND status IN ({', '.join('?' * len(statuses))})"
            values += list(statuses)
        query += " AND idx > ? ORDER BY idx LIMIT ?"
        values += [after, limit]
        return [item_record(row) for row in self._db().execute(query, values)]

    def item_counts(self, process_id: str) -> dict[str, int]:
        """A batch's items by status."""
        rows = self._db().execute(
            "SELECT status, count(*) FROM items WHERE process_id = ? GROUP BY status", (process_id,)
        )
        return dict(rows.fetchall())

    def get(self, process_id: str) -> ProcessRecord | None:
        """The process as committed, or None."""
        return self._read(self._db(), process_id)

    def _read(self, db: sqlite3.Connection, process_id: str) -> ProcessRecord | None:
        row = db.execute(
            f"SELECT {PROCESS_COLUMNS} FROM processes WHERE id = ?",  # noqa: S608 - fixed names
            (process_id,),
        ).fetchone()
        if row is None:
            return None
        return self._records(db, [row])[0]

    def _read_many(
        self, db: sqlite3.Connection, ids: builtins.list[str]
    ) -> builtins.list[ProcessRecord]:
        marks = ", ".join("?" * len(ids))
        rows = db.execute(
            f"SELECT {PROCESS_COLUMNS} FROM processes WHERE id IN ({marks})",  # noqa: S608 - placeholders
            ids,
        ).fetchall()
        by_id = {record.process_id: record for record in self._records(db, rows)}
        return [by_id[i] for i in ids]

    def _records(
        self, db: sqlite3.Connection, rows: builtins.list[Any]
    ) -> builtins.list[ProcessRecord]:
        records = process_records(rows)
        if records:
            marks = ", ".join("?" * len(records))
            add_steps(
                records,
                db.execute(
                    f"SELECT {STEP_COLUMNS} FROM steps WHERE process_id IN ({marks})",  # noqa: S608 - placeholders
                    list(records),
                ),
            )
        return list(records.values())

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
        """Processes newest first, filtered, one page at a time (see `ProcessStore.list`)."""
        where, values = list_filters(
            "?", status=status, kind=kind, since=since, until=until, cursor=cursor
        )
        db = self._db()
        rows = db.execute(
            f"SELECT n, {PROCESS_COLUMNS} FROM processes {where} ORDER BY n DESC LIMIT ?",  # noqa: S608 - built from fixed parts
            [*values, limit + 1],
        ).fetchall()
        page, next_cursor = page_rows(rows, limit)
        return Page(self._records(db, page), next_cursor)

    def history(self, process_id: str) -> builtins.list[dict[str, Any]]:
        """The process's events in seq order."""
        return [
            history_event(row)
            for row in self._db().execute(
                "SELECT seq, type, at, data FROM events WHERE process_id = ? ORDER BY seq",
                (process_id,),
            )
        ]

    def unfinished(self, owner: str) -> builtins.list[ProcessRecord]:
        """The processes ``owner`` ran (or nobody owns), running or paused: to recover at start."""
        db = self._db()
        rows = db.execute(
            f"SELECT {PROCESS_COLUMNS} FROM processes WHERE status IN ('running', 'paused') "  # noqa: S608 - fixed names
            "AND (owner = ? OR owner IS NULL) ORDER BY n",
            (owner,),
        ).fetchall()
        return self._records(db, rows)

    def counts(self) -> dict[tuple[str, str], int]:
        """Processes pending, running and paused, by (kind, status)."""
        marks = ", ".join(f"'{status}'" for status in sorted(UNFINISHED))
        return {
            (kind, status): count
            for kind, status, count in self._db().execute(
                f"SELECT kind, status, count(*) FROM processes WHERE status IN ({marks}) "  # noqa: S608 - fixed names
                "GROUP BY kind, status"
            )
        }

    def step_durations(self, kind: str, limit: int = 1000) -> dict[str, float]:
        """The mean duration of each step of ``kind`` over its last ``limit`` completions."""
        db = self._db()
        names = [
            row[0]
            for row in db.execute(
                "SELECT DISTINCT name FROM steps WHERE kind = ? AND status = 'completed'", (kind,)
            )
        ]
        return mean_durations(
            (
                name,
                db.execute(
                    "SELECT avg(duration) FROM (SELECT duration FROM steps WHERE kind = ? AND "
                    "name = ? AND status = 'completed' ORDER BY finished_at DESC LIMIT ?)",
                    (kind, name, limit),
                ).fetchone()[0],
            )
            for name in names
        )

    def finished_since(self, since: float, kind: str | None = None) -> builtins.list[Finished]:
        """Processes finished at or after ``since``, for statistics."""
        db = self._db()
        query = (
            "SELECT id, kind, status, started_at, finished_at FROM processes "
            "WHERE finished_at IS NOT NULL AND finished_at >= ?"
        )
        values: builtins.list[Any] = [since]
        if kind is not None:
            query += " AND kind = ?"
            values.append(kind)
        rows = db.execute(query, values).fetchall()
        step_query = (
            "SELECT process_id, name, duration FROM steps WHERE status = 'completed' "
            "AND finished_at >= ?"
        )
        if kind is not None:
            step_query += " AND kind = ?"
        return finished(rows, db.execute(step_query, values) if rows else [])

    def close(self) -> None:
        """Commit what is queued, stop the writer and close every connection."""
        with self._guard:
            if self._closed:
                return
            self._closed = True
            self._guard.notify_all()
        self._thread.join(timeout=30)
        with self._connections_lock:
            for db in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    db.close()
            self._connections.clear()
        self._lock_file.close()


class _Failed:
    """A job's exception, carried to its caller."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


def _job(db: sqlite3.Connection, job: _Job) -> Any:
    """Run one job under a savepoint: its failure rolls back its own writes only."""
    db.execute("SAVEPOINT job")
    try:
        answer = job(db)
    except sqlite3.Error:
        # SQLite may have rolled the whole transaction back already (a full disk does).
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK TO job")
            db.execute("RELEASE job")
        raise  # the store cannot be written: the whole batch fails
    except Exception as error:  # noqa: BLE001 - handed to the caller, who raises it
        db.execute("ROLLBACK TO job")
        db.execute("RELEASE job")
        return _Failed(error)
    db.execute("RELEASE job")
    return answer


def _migrate(db: sqlite3.Connection) -> int:
    """Apply the migrations the file lacks, each in its own transaction; the version after.

    A file written before ``schema_version`` existed holds version 1.

    Raises:
        ConfigError: the file's schema is newer than this code's.
        sqlite3.Error: the file cannot be read or written.
    """
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
        "description TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    (found,) = db.execute("SELECT max(version) FROM schema_version").fetchone()
    if (
        found is None
        and db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'processes'"
        ).fetchone()
    ):
        found = 1
        db.execute("INSERT INTO schema_version VALUES (1, ?, ?)", (MIGRATIONS[0][1], time.time()))
    found = found or 0
    if found > SCHEMA_VERSION:
        raise newer_schema(found, SCHEMA_VERSION)
    for version, description, sql in MIGRATIONS:
        if version > found:
            db.executescript(
                f"BEGIN IMMEDIATE; {sql}; INSERT INTO schema_version VALUES "  # noqa: S608 - ours
                f"({version}, '{description}', {time.time()!r}); COMMIT;"
            )
            found = version
    # Tables added to the first schema before versions existed (items, schedule_state):
    # made where an older file lacks them. Every statement of it is IF NOT EXISTS.
    db.executescript(_SCHEMA_V1)
    return int(found)


def _add_fire_columns(db: sqlite3.Connection) -> None:
    """Give a ``schedule_fires`` table made by an older tierd the columns it lacks."""
    have = {row[1] for row in db.execute("PRAGMA table_info(schedule_fires)")}
    for column, declaration in _FIRE_COLUMNS.items():
        if column not in have:
            db.execute(f"ALTER TABLE schedule_fires ADD COLUMN {column} {declaration}")


def _unusable(path: Path, reason: str) -> ConfigError:
    return ConfigError(
        f"[processes] store: cannot use {path}: {reason}; set another store path, "
        "or runtime.data_dir"
    )


def store_path(url: str, data_dir: str) -> Path:
    """The file of a ``sqlite:///path`` store URL ("" means ``processes.db`` in ``data_dir``).

    Raises:
        ValueError: not a ``sqlite:///`` URL.
    """
    if not url:
        return Path(data_dir) / "processes.db"
    if not url.startswith("sqlite:///"):
        raise ValueError(
            f"unsupported store {url!r}: use 'sqlite:///path/to/processes.db' "
            "or 'postgresql://user@host:port/database'"
        )
    return Path(url.removeprefix("sqlite:///"))
