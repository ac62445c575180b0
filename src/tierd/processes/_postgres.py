"""`PostgresProcessStore`: a `ProcessStore` in one PostgreSQL database, shared by several runtimes.

Saves are batched as in `tierd.processes._sqlite`: a save is a list of
statements put in the current batch under a short lock; one writer thread
takes whole batches, sends each batch's statements in one pipeline and
commits them in one transaction, and every save of a batch waits on the
same `Outcome`. Transactions that read and then write (`create`, `claim`,
`claim_expired`, `cancel_pending`, `requeue`, `prune`) run in the caller's
thread on a pooled connection (psycopg_pool); PostgreSQL's row locks keep
runtimes apart:

- pending work is claimed with ``FOR UPDATE SKIP LOCKED`` inside a
  ``WITH … AS MATERIALIZED (SELECT … LIMIT n …)`` CTE, so two runtimes never
  take the same process and a claim never takes more than its limit;
- an idempotency key is unique among a kind's unfinished processes (a
  partial unique index), a schedule fire unique per (schedule, fire time);
- each running or paused process has an owner and a lease (``lease_at``,
  renewed by the owner's sweep); a process whose lease lapsed is adopted by
  another runtime (`claim_expired`);
- a submit that leaves work pending sends ``NOTIFY tierd_pending`` with its
  kind; every store LISTENs on its own connection and tells its runner
  (`watch`), and tells it anyway every ``poll_interval`` seconds in case a
  notification was lost.

The schema is tierd's own: `MIGRATIONS`, applied in order at open (and by
``tierd store migrate``) under an advisory lock, recorded in ``schema_version``.
"""

from __future__ import annotations

import builtins  # `list` is a method name here; annotations need the type
import collections
import contextlib
import threading
import time
from typing import TYPE_CHECKING, Any, Final

import psycopg
import psycopg_pool

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
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

    from ._record import ItemRecord, ProcessRecord
    from ._store import Finished, ScheduleFire

CHANNEL: Final = "tierd_pending"
"""The NOTIFY channel a submit of pending work signals, with the kind as payload."""
_LOCK_ID: Final = 0x7469_6572_64
"""The advisory lock that serializes migrations of one database ("tierd")."""

MIGRATIONS: Final[tuple[tuple[int, str, str], ...]] = (
    (
        1,
        "processes, steps, events, batch items, schedule fires and schedule state; leases",
        """
CREATE TABLE processes (
    n BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL,
    key TEXT,
    step_names BYTEA NOT NULL,
    params BYTEA,
    result BYTEA,
    error BYTEA,
    current_step TEXT,
    correlation BYTEA,
    created_at DOUBLE PRECISION NOT NULL,
    started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    seq INTEGER NOT NULL,
    owner TEXT,
    lease_at DOUBLE PRECISION);
CREATE INDEX processes_pending ON processes (kind, priority, n) WHERE status = 'pending';
CREATE INDEX processes_by_status ON processes (status, n);
CREATE INDEX processes_by_kind ON processes (kind, n);
CREATE INDEX processes_by_kind_status ON processes (kind, status, n);
CREATE INDEX processes_created ON processes (created_at);
CREATE INDEX processes_retention ON processes (status, finished_at)
    WHERE finished_at IS NOT NULL;
CREATE INDEX processes_leases ON processes (owner, lease_at)
    WHERE status IN ('running', 'paused');
CREATE UNIQUE INDEX processes_key ON processes (kind, key)
    WHERE key IS NOT NULL AND status IN ('pending', 'running', 'paused');
CREATE TABLE steps (
    process_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    progress DOUBLE PRECISION NOT NULL,
    note TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    errors BYTEA,
    input BYTEA,
    output BYTEA,
    checkpoint BYTEA,
    started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    duration DOUBLE PRECISION,
    cpu DOUBLE PRECISION,
    PRIMARY KEY (process_id, position));
CREATE INDEX steps_durations ON steps (kind, name, finished_at) WHERE status = 'completed';
CREATE TABLE events (
    process_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    data BYTEA,
    PRIMARY KEY (process_id, seq));
CREATE TABLE schedule_fires (
    schedule TEXT NOT NULL,
    fire_at DOUBLE PRECISION NOT NULL,
    process_id TEXT,
    outcome TEXT NOT NULL,
    recorded_at DOUBLE PRECISION NOT NULL,
    message_id TEXT,
    detail TEXT,
    manual BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (schedule, fire_at));
CREATE INDEX schedule_fires_recorded ON schedule_fires (recorded_at);
CREATE TABLE items (
    process_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    item BYTEA,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    error BYTEA,
    result BYTEA,
    PRIMARY KEY (process_id, idx));
CREATE INDEX items_by_status ON items (process_id, status, idx);
CREATE TABLE schedule_state (
    schedule TEXT PRIMARY KEY,
    paused BOOLEAN NOT NULL,
    changed_at DOUBLE PRECISION NOT NULL);
""",
    ),
)
"""(version, what it does, SQL): each applied once, in order, in one transaction."""
SCHEMA_VERSION: Final = MIGRATIONS[-1][0]
"""The schema this code reads and writes."""

_CREATE: Final = f"""
WITH made AS (
    INSERT INTO processes ({PROCESS_COLUMNS}, owner, lease_at)
    VALUES ({", ".join(["%s"] * 17)})
    ON CONFLICT (kind, key) WHERE key IS NOT NULL AND status IN ('pending', 'running', 'paused')
    DO NOTHING RETURNING id, kind),
logged AS (
    INSERT INTO events (process_id, seq, type, at, data)
    SELECT made.id, e.seq, e.type, e.at, e.data FROM made,
        unnest(%s::integer[], %s::text[], %s::double precision[], %s::bytea[])
        AS e(seq, type, at, data)),
told AS (SELECT pg_notify(%s, made.kind) FROM made WHERE %s)
SELECT id, (SELECT count(*) FROM told) FROM made"""  # noqa: S608 - fixed names
"""A process, its events and (if pending) its NOTIFY: one statement, one round trip."""
_UPDATE: Final = (
    "UPDATE processes SET status = %s, result = %s, error = %s, current_step = %s, "
    "started_at = %s, finished_at = %s, seq = %s WHERE id = %s"
)
_STEP: Final = (
    "INSERT INTO steps (process_id, position, name, kind, status, progress, note, "
    "attempts, errors, input, output, checkpoint, started_at, finished_at, duration, cpu) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (process_id, position) DO UPDATE SET "
    "name = excluded.name, status = excluded.status, progress = excluded.progress, "
    "note = excluded.note, attempts = excluded.attempts, errors = excluded.errors, "
    "input = excluded.input, output = excluded.output, checkpoint = excluded.checkpoint, "
    "started_at = excluded.started_at, finished_at = excluded.finished_at, "
    "duration = excluded.duration, cpu = excluded.cpu"
)
_EVENT: Final = (
    "INSERT INTO events (process_id, seq, type, at, data) VALUES (%s, %s, %s, %s, %s) "
    "ON CONFLICT DO NOTHING"
)
_ITEM: Final = (
    "INSERT INTO items (process_id, idx, item, status, attempts, error, result) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s)"
)
_ITEM_STATE: Final = (
    "UPDATE items SET status = %s, attempts = %s, error = %s, result = %s "
    "WHERE process_id = %s AND idx = %s"
)
_Write = tuple[str, tuple[Any, ...] | builtins.list[tuple[Any, ...]]]
"""One statement and its values (a list of rows: ``executemany``)."""
_CLAIM: Final = f"""
WITH picked AS MATERIALIZED (
    SELECT id FROM processes WHERE status = 'pending' AND kind = %s
    ORDER BY priority, n LIMIT %s FOR UPDATE SKIP LOCKED),
taken AS (
    UPDATE processes AS p SET status = 'running', owner = %s, lease_at = %s, seq = p.seq + 1,
        started_at = COALESCE(p.started_at, %s)
    FROM picked WHERE p.id = picked.id
    RETURNING p.n, {", ".join(f"p.{column.strip()}" for column in PROCESS_COLUMNS.split(","))}),
logged AS (
    INSERT INTO events (process_id, seq, type, at, data)
    SELECT id, seq, 'process_started', %s, NULL FROM taken)
SELECT {PROCESS_COLUMNS} FROM taken ORDER BY priority, n"""  # noqa: S608 - fixed names
"""Take pending work, write its ``process_started`` events, return its rows: one statement."""
_ADOPT: Final = """
WITH lapsed AS MATERIALIZED (
    SELECT id FROM processes
    WHERE status IN ('running', 'paused') AND kind = ANY(%s) AND owner IS DISTINCT FROM %s
        AND COALESCE(lease_at, started_at, created_at) < %s
    ORDER BY n LIMIT %s FOR UPDATE SKIP LOCKED)
UPDATE processes AS p SET owner = %s, lease_at = %s
FROM lapsed WHERE p.id = lapsed.id
RETURNING p.id, p.n"""


def _unusable(url: str, reason: str) -> ConfigError:
    return ConfigError(f"[processes] store: cannot use {_safe(url)}: {reason}")


def _safe(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        parts = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the PostgreSQL URL"
    user = str(parts.get("user") or "")
    where = f"{parts.get('host') or 'localhost'}:{parts.get('port') or 5432}"
    return f"postgresql://{user + '@' if user else ''}{where}/{parts.get('dbname') or ''}"


def _connect(url: str, **options: Any) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(url, connect_timeout=10, **options)
    except psycopg.ProgrammingError as error:
        raise _unusable(url, f"not a PostgreSQL URL ({str(error).strip()})") from None
    except psycopg.Error as error:
        raise _unusable(url, str(error).strip().splitlines()[0]) from None


def migrate(url: str, *, upgrade: bool = True) -> tuple[int, int]:
    """Bring the database's schema to `SCHEMA_VERSION`; return (version before, version after).

    Args:
        url: the ``postgresql://`` URL.
        upgrade: apply missing migrations; False only reads the version.

    Raises:
        ConfigError: the database cannot be reached, or its schema is newer than this code's.
    """
    with _connect(url) as db:
        try:
            with db.transaction():
                db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
                db.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                    "description TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
                )
                row = db.execute("SELECT max(version) FROM schema_version").fetchone()
                before = int(row[0]) if row and row[0] is not None else 0
                if before > SCHEMA_VERSION:
                    raise newer_schema(before, SCHEMA_VERSION)
                after = before
                for version, description, sql in MIGRATIONS:
                    if version <= before or not upgrade:
                        continue
                    db.execute(sql.encode())
                    db.execute(
                        "INSERT INTO schema_version (version, description, applied_at) "
                        "VALUES (%s, %s, %s)",
                        (version, description, time.time()),
                    )
                    after = version
        except psycopg.Error as error:
            raise _unusable(url, str(error).strip().splitlines()[0]) from None
    return before, after


class _Batch:
    """What one group commit carries, in order: statements and their parameters."""

    __slots__ = ("commit", "items")

    def __init__(self) -> None:
        self.items: builtins.list[_Write] = []
        self.commit: Outcome[Exception | None] = Outcome()


class PostgresProcessStore:
    """The process store in a PostgreSQL database, shared by several runtimes; a `ProcessStore`.

    Args:
        url: a ``postgresql://user@host:port/db`` URL (libpq's, so ``?sslmode=…`` works).
        name: the runtime's name, for logs and the connections' ``application_name``.
        poll_interval: seconds between two checks for pending work when no
            notification came (the runtime's ``sweep_interval``).
        pool_size: the most pooled connections (reads and transactions).

    Raises:
        ConfigError: the database cannot be reached, or its schema is newer than
            this tierd's; names ``[processes] store``.
    """

    def __init__(
        self, url: str, *, name: str = "tierd", poll_interval: float = 1.0, pool_size: int = 8
    ) -> None:
        self.url = url
        self.name = name
        self.poll_interval = poll_interval
        self.log = get_logger(runtime=name, component="process_store")
        self.schema_version = migrate(url)[1] or SCHEMA_VERSION
        self._guard = threading.Condition(threading.Lock())
        self._batches: collections.deque[_Batch] = collections.deque()
        self._writing: _Batch | None = None
        self._closed = False
        self._watchers: builtins.list[Callable[[str | None], None]] = []
        self.commits = 0
        """Group commits so far."""
        options = {"application_name": f"tierd {name}"[:63]}
        self._writer_db: psycopg.Connection[Any] | None = _connect(url, **options)
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, **options},
            name=f"tierd-{name}",
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=10)
        except psycopg_pool.PoolTimeout:
            self._writer_db.close()
            raise _unusable(url, "no connection within 10s") from None
        self._writer = threading.Thread(
            target=self._write_forever, name=f"tierd-process-store-{name}", daemon=True
        )
        self._writer.start()
        self._listener = threading.Thread(
            target=self._listen_forever, name=f"tierd-process-listen-{name}", daemon=True
        )
        self._listener.start()

    # -- transactions ------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self, *, atomic: bool = True) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection inside one transaction; errors of the database are `Rejected`.

        ``atomic=False``: no BEGIN and COMMIT, for work that is one statement
        (atomic by itself) or a read after it.
        """
        if self._closed:
            raise Rejected("the process store is closed (the runtime is stopping)")
        try:
            with self._pool.connection() as db:
                if not atomic:
                    yield db
                    return
                with db.transaction():
                    yield db
        except psycopg.Error as error:
            self.log.error("process_store_transaction_failed", error=str(error))
            raise Rejected(f"the process store cannot be written: {error}") from None
        except psycopg_pool.PoolTimeout:
            raise Rejected("the process store has no free connection") from None

    @contextlib.contextmanager
    def _reading(self) -> Iterator[psycopg.Connection[Any]]:
        if self._closed:
            raise Rejected("the process store is closed (the runtime is stopping)")
        try:
            with self._pool.connection() as db:
                yield db
        except psycopg.Error as error:
            raise Rejected(f"the process store cannot be read: {error}") from None
        except psycopg_pool.PoolTimeout:
            raise Rejected("the process store has no free connection") from None

    def create(
        self,
        record: ProcessRecord,
        events: Sequence[dict[str, Any]],
        *,
        owner: str | None = None,
    ) -> tuple[str, bool]:
        """Insert a process and its events (see `ProcessStore.create`); NOTIFY if pending."""
        row = process_row(record, owner)
        event_rows = [event_row(record.process_id, event) for event in events]
        columns = [[row[i] for row in event_rows] for i in range(1, 5)]
        parameters = (*row, *columns, CHANNEL, record.status == "pending")
        while True:
            with self._transaction(atomic=False) as db:
                if db.execute(_CREATE, parameters).fetchone() is not None:
                    return record.process_id, True
                found = db.execute(
                    "SELECT id FROM processes WHERE kind = %s AND key = %s "
                    "AND status IN ('pending', 'running', 'paused')",
                    (record.kind, record.key),
                ).fetchone()
                if found is not None:
                    return str(found[0]), False
            # The holder of the key finished between the insert and the read: insert again.

    def claim(self, kind: str, limit: int, owner: str, now: float) -> builtins.list[ProcessRecord]:
        """Take pending processes of ``kind`` by (priority, submit order); mark them running."""
        if limit <= 0:
            return []
        with self._transaction(atomic=False) as db:
            rows = db.execute(_CLAIM, (kind, limit, owner, now, now, now)).fetchall()
            return self._records(db, rows) if rows else []

    def renew(self, owner: str, now: float) -> int:
        """Renew the lease of every process ``owner`` runs (see `ProcessStore.renew`)."""
        with self._transaction() as db:
            renewed: int = db.execute(
                "UPDATE processes SET lease_at = %s "
                "WHERE owner = %s AND status IN ('running', 'paused')",
                (now, owner),
            ).rowcount
            return renewed

    def claim_expired(
        self, owner: str, kinds: Iterable[str], stale_before: float, now: float, limit: int
    ) -> builtins.list[ProcessRecord]:
        """Adopt processes whose owner's lease lapsed (see `ProcessStore.claim_expired`)."""
        kinds = sorted(kinds)
        if limit <= 0 or not kinds:
            return []
        with self._transaction() as db:
            rows = db.execute(_ADOPT, (kinds, owner, stale_before, limit, owner, now)).fetchall()
            ids = [row[0] for row in sorted(rows, key=lambda row: row[1])]
            return self._read_many(db, ids) if ids else []

    def cancel_pending(self, process_id: str, now: float) -> ProcessRecord | None:
        """Cancel a pending or paused process (see `ProcessStore.cancel_pending`)."""
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE processes SET status = 'cancelled', finished_at = %s, seq = seq + 1, "
                "current_step = NULL WHERE id = %s AND status IN ('pending', 'paused')",
                (now, process_id),
            ).rowcount
            if not changed:
                return None
            record = self._read(db, process_id)
            assert record is not None
            event = {"type": "process_cancelled", "at": now, "seq": record.seq}
            db.execute(_EVENT, event_row(process_id, event))
            return record

    def requeue(
        self, process_id: str, from_step: int, now: float, new_params: Any = None
    ) -> ProcessRecord | None:
        """Put a finished process back to pending from step ``from_step`` (see the protocol)."""
        with self._transaction() as db:
            if (
                db.execute(
                    "SELECT 1 FROM processes WHERE id = %s FOR UPDATE", (process_id,)
                ).fetchone()
                is None
            ):
                return None
            record = self._read(db, process_id)
            if record is None or record.status not in TERMINAL:
                return None
            rows, event = requeued(record, from_step, now)
            db.cursor().executemany(_STEP, rows)
            db.execute(
                "UPDATE processes SET status = 'pending', result = NULL, error = NULL, "
                "finished_at = NULL, current_step = NULL, owner = NULL, lease_at = NULL, "
                "seq = %s WHERE id = %s",
                (record.seq, process_id),
            )
            db.execute(_EVENT, event_row(process_id, event))
            db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, record.kind))
            return record

    def prune(self, cutoffs: Mapping[str, float], batch: int = 1000) -> int:
        """Delete up to ``batch`` finished processes older than their cutoffs."""
        with self._transaction() as db:
            ids: builtins.list[str] = []
            for status, cutoff in cutoffs.items():
                if len(ids) >= batch:
                    break
                ids += [
                    row[0]
                    for row in db.execute(
                        "SELECT id FROM processes WHERE status = %s AND finished_at IS NOT NULL "
                        "AND finished_at < %s LIMIT %s FOR UPDATE SKIP LOCKED",
                        (status, cutoff, batch - len(ids)),
                    )
                ]
            if ids:
                db.execute("DELETE FROM events WHERE process_id = ANY(%s)", (ids,))
                db.execute("DELETE FROM steps WHERE process_id = ANY(%s)", (ids,))
                db.execute("DELETE FROM items WHERE process_id = ANY(%s)", (ids,))
                db.execute("DELETE FROM processes WHERE id = ANY(%s)", (ids,))
            return len(ids)

    # -- schedules ---------------------------------------------------------------

    def claim_fire(
        self, schedule: str, fire_at: float, now: float, *, manual: bool = False
    ) -> bool:
        """Insert the fire as ``firing`` unless it is recorded already (see the protocol)."""
        with self._transaction(atomic=False) as db:
            return (
                db.execute(
                    "INSERT INTO schedule_fires (schedule, fire_at, outcome, recorded_at, manual) "
                    "VALUES (%s, %s, 'firing', %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
                    (schedule, fire_at, now, manual),
                ).fetchone()
                is not None
            )

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
        with self._transaction(atomic=False) as db:
            db.execute(
                "UPDATE schedule_fires SET outcome = %s, recorded_at = %s, process_id = %s, "
                "message_id = %s, detail = %s WHERE schedule = %s AND fire_at = %s",
                (outcome, now, process_id, message_id, detail, schedule, fire_at),
            )

    def fires(
        self, schedule: str, *, limit: int = 20, outcome: str | None = None
    ) -> builtins.list[ScheduleFire]:
        """The schedule's fires, latest fire time first."""
        query = (
            "SELECT schedule, fire_at, outcome, recorded_at, process_id, message_id, detail, "
            "manual FROM schedule_fires WHERE schedule = %s"
        )
        values: builtins.list[Any] = [schedule]
        if outcome is not None:
            query += " AND outcome = %s"
            values.append(outcome)
        with self._reading() as db:
            rows = db.execute(f"{query} ORDER BY fire_at DESC LIMIT %s", [*values, limit])
            return [schedule_fire(row) for row in rows]

    def prune_fires(self, before: float, batch: int = 1000) -> int:
        """Delete up to ``batch`` fires recorded before ``before`` but each schedule's latest."""
        with self._transaction(atomic=False) as db:
            deleted: int = db.execute(
                "WITH old AS MATERIALIZED (SELECT schedule, fire_at FROM schedule_fires AS f "
                "WHERE recorded_at < %s AND fire_at < (SELECT max(fire_at) FROM schedule_fires "
                "WHERE schedule = f.schedule) LIMIT %s FOR UPDATE SKIP LOCKED) "
                "DELETE FROM schedule_fires AS f USING old "
                "WHERE f.schedule = old.schedule AND f.fire_at = old.fire_at",
                (before, batch),
            ).rowcount
            return deleted

    def set_schedule_paused(self, schedule: str, now: float, *, paused: bool) -> None:
        """Pause or resume a schedule for every runtime sharing the database."""
        with self._transaction(atomic=False) as db:
            db.execute(
                "INSERT INTO schedule_state (schedule, paused, changed_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (schedule) DO UPDATE SET paused = excluded.paused, "
                "changed_at = excluded.changed_at",
                (schedule, paused, now),
            )

    def paused_schedules(self) -> set[str]:
        """The schedules paused now."""
        with self._reading() as db:
            rows = db.execute("SELECT schedule FROM schedule_state WHERE paused").fetchall()
        return {row[0] for row in rows}

    # -- saves -------------------------------------------------------------------

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

    def _enqueue(self, writes: builtins.list[_Write]) -> Outcome[Exception | None]:
        with self._guard:
            if self._closed:
                return Outcome.of(Rejected("the process store is closed"))
            if not self._batches or len(self._batches[-1].items) >= BATCH_LIMIT:
                self._batches.append(_Batch())
                self._guard.notify()
            batch = self._batches[-1]
            batch.items.extend(writes)
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
        while True:
            with self._guard:
                while not self._batches and not self._closed:
                    self._guard.wait()
                if not self._batches:
                    return
                batch = self._writing = self._batches.popleft()
            error = self._write(batch)
            with self._guard:
                self._writing = None
            batch.commit.set(error)

    def _write(self, batch: _Batch) -> Exception | None:
        """Send one batch in a pipeline and commit it; reconnect once if the connection broke."""
        for attempt in (1, 2):
            try:
                if self._writer_db is None or self._writer_db.closed:
                    self._writer_db = psycopg.connect(self.url, connect_timeout=10)
                db = self._writer_db
                with db.pipeline(), db.cursor() as cursor:
                    for sql, params in batch.items:
                        if isinstance(params, list):  # many rows of one statement
                            cursor.executemany(sql, params)
                        else:
                            cursor.execute(sql, params)
                db.commit()
                self.commits += 1
            except psycopg.Error as failure:
                with contextlib.suppress(psycopg.Error):
                    if self._writer_db is not None:
                        self._writer_db.rollback()
                if isinstance(failure, psycopg.OperationalError) and attempt == 1:
                    with contextlib.suppress(psycopg.Error):
                        if self._writer_db is not None:
                            self._writer_db.close()
                    self._writer_db = None
                    continue
                self.log.error("process_store_write_failed", error=str(failure))
                return Rejected(f"the process store cannot be written: {failure}")
            return None
        return None  # pragma: no cover - the loop returns

    # -- batch items -------------------------------------------------------------

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

    def items(
        self,
        process_id: str,
        *,
        statuses: Sequence[str] | None = None,
        after: int = -1,
        limit: int = 100,
    ) -> builtins.list[ItemRecord]:
        """A page of a batch's items by index (see `ProcessStore.items`)."""
        query = "SELECT idx, item, status, attempts, error, result FROM items WHERE process_id = %s"
        values: builtins.list[Any] = [process_id]
        if statuses is not None:
            query += " AND status = ANY(%s)"
            values.append(list(statuses))
        query += " AND idx > %s ORDER BY idx LIMIT %s"
        values += [after, limit]
        with self._reading() as db:
            rows = db.execute(query, values).fetchall()
        return [item_record(row) for row in rows]

    def item_counts(self, process_id: str) -> dict[str, int]:
        """A batch's items by status."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT status, count(*) FROM items WHERE process_id = %s GROUP BY status",
                (process_id,),
            ).fetchall()
        return dict(rows)

    # -- work from other runtimes --------------------------------------------------

    def watch(self, callback: Callable[[str | None], None]) -> None:
        """Call ``callback(kind)`` when pending work of ``kind`` may wait (see the protocol)."""
        with self._guard:
            self._watchers.append(callback)

    def _listen_forever(self) -> None:
        """LISTEN for submits; tell the watchers of each, and every ``poll_interval`` anyway."""
        db: psycopg.Connection[Any] | None = None
        next_poll = time.monotonic() + self.poll_interval
        while not self._closed:
            heard: set[str | None] = set()
            try:
                if db is None or db.closed:
                    db = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
                    db.execute(f"LISTEN {CHANNEL}")
                    heard.add(None)  # what was submitted while nobody listened
                for note in db.notifies(timeout=min(self.poll_interval, 0.5), stop_after=1):
                    heard.add(note.payload)
            except psycopg.Error as error:
                self.log.warning("process_store_listen_failed", error=str(error))
                with contextlib.suppress(psycopg.Error):
                    if db is not None:
                        db.close()
                db = None
                time.sleep(min(self.poll_interval, 1.0))
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + self.poll_interval
                heard.add(None)
            for kind in sorted(heard, key=lambda k: k or ""):
                self._tell(kind)
        if db is not None:
            with contextlib.suppress(psycopg.Error):
                db.close()

    def _tell(self, kind: str | None) -> None:
        with self._guard:
            watchers = list(self._watchers)
        for callback in watchers:
            try:
                callback(kind)
            except Exception:  # a watcher's failure must not stop the listener
                self.log.exception("process_store_watcher_failed")

    # -- reads -------------------------------------------------------------------

    def get(self, process_id: str) -> ProcessRecord | None:
        """The process as committed, or None."""
        with self._reading() as db:
            return self._read(db, process_id)

    def _read(self, db: psycopg.Connection[Any], process_id: str) -> ProcessRecord | None:
        row = db.execute(
            f"SELECT {PROCESS_COLUMNS} FROM processes WHERE id = %s",  # noqa: S608 - fixed names
            (process_id,),
        ).fetchone()
        if row is None:
            return None
        return self._records(db, [row])[0]

    def _read_many(
        self, db: psycopg.Connection[Any], ids: builtins.list[str]
    ) -> builtins.list[ProcessRecord]:
        rows = db.execute(
            f"SELECT {PROCESS_COLUMNS} FROM processes WHERE id = ANY(%s)",  # noqa: S608 - fixed names
            (ids,),
        ).fetchall()
        by_id = {record.process_id: record for record in self._records(db, rows)}
        return [by_id[i] for i in ids]

    def _records(
        self, db: psycopg.Connection[Any], rows: builtins.list[Any]
    ) -> builtins.list[ProcessRecord]:
        records = process_records(rows)
        if records:
            add_steps(
                records,
                db.execute(
                    f"SELECT {STEP_COLUMNS} FROM steps WHERE process_id = ANY(%s)",  # noqa: S608 - fixed names
                    (list(records),),
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
            "%s", status=status, kind=kind, since=since, until=until, cursor=cursor
        )
        with self._reading() as db:
            rows = db.execute(
                f"SELECT n, {PROCESS_COLUMNS} FROM processes {where} ORDER BY n DESC LIMIT %s",  # noqa: S608 - built from fixed parts
                [*values, limit + 1],
            ).fetchall()
            page, next_cursor = page_rows(rows, limit)
            items = self._records(db, page)
        return Page(items, next_cursor)

    def history(self, process_id: str) -> builtins.list[dict[str, Any]]:
        """The process's events in seq order."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT seq, type, at, data FROM events WHERE process_id = %s ORDER BY seq",
                (process_id,),
            ).fetchall()
        return [history_event(row) for row in rows]

    def unfinished(self, owner: str) -> builtins.list[ProcessRecord]:
        """The processes ``owner`` ran, running or paused: what it recovers at start."""
        with self._reading() as db:
            rows = db.execute(
                f"SELECT {PROCESS_COLUMNS} FROM processes WHERE status IN ('running', 'paused') "  # noqa: S608 - fixed names
                "AND owner = %s ORDER BY n",
                (owner,),
            ).fetchall()
            return self._records(db, rows)

    def counts(self) -> dict[tuple[str, str], int]:
        """Processes pending, running and paused, by (kind, status)."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT kind, status, count(*) FROM processes WHERE status = ANY(%s) "
                "GROUP BY kind, status",
                (sorted(UNFINISHED),),
            ).fetchall()
        return {(kind, status): count for kind, status, count in rows}

    def step_durations(self, kind: str, limit: int = 1000) -> dict[str, float]:
        """The mean duration of each step of ``kind`` over its last ``limit`` completions."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT s.name, (SELECT avg(d.duration) FROM (SELECT duration FROM steps "
                "WHERE kind = %s AND name = s.name AND status = 'completed' "
                "ORDER BY finished_at DESC LIMIT %s) AS d) "
                "FROM (SELECT DISTINCT name FROM steps WHERE kind = %s AND status = 'completed') "
                "AS s",
                (kind, limit, kind),
            ).fetchall()
        return mean_durations(rows)

    def finished_since(self, since: float, kind: str | None = None) -> builtins.list[Finished]:
        """Processes finished at or after ``since``, for statistics."""
        query = (
            "SELECT id, kind, status, started_at, finished_at FROM processes "
            "WHERE finished_at IS NOT NULL AND finished_at >= %s"
        )
        step_query = (
            "SELECT process_id, name, duration FROM steps WHERE status = 'completed' "
            "AND finished_at >= %s"
        )
        values: builtins.list[Any] = [since]
        if kind is not None:
            query += " AND kind = %s"
            step_query += " AND kind = %s"
            values.append(kind)
        with self._reading() as db:
            rows = db.execute(query, values).fetchall()
            steps = db.execute(step_query, values).fetchall() if rows else []
        return finished(rows, steps)

    def close(self) -> None:
        """Commit what is queued, stop the writer and the listener, close every connection."""
        with self._guard:
            if self._closed:
                return
            self._closed = True
            self._guard.notify_all()
        self._writer.join(timeout=30)
        self._listener.join(timeout=5)
        self._pool.close()
        if self._writer_db is not None:
            with contextlib.suppress(psycopg.Error):
                self._writer_db.close()
