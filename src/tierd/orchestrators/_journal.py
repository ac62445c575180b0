"""`Journal`: the SQLite journal of one durable level, written by one thread in group commits.

A durable level writes every message it accepts to its journal before the
acceptance is confirmed (the client's ``send`` returns, `Runtime.send`
returns), and removes it once it is handled or dead-lettered. After a crash,
the next start reads back what was accepted and not handled, and requeues it.

The level never waits for the disk under its lock. A write is a tuple put in
the current *batch* (a list, under the journal's own short lock); one writer
thread takes whole batches, writes each in one transaction and commits it.
Everything that arrived while a commit was running goes into the next one, so
the more senders there are, the more each commit carries. An `Outcome` is
shared by the writes of one batch: acceptances wait on it (or, in the
bridge, hang their ack on it) outside every lock.

The database (WAL mode, ``synchronous = NORMAL``) survives ``kill -9`` of the
process: a committed transaction is in the WAL file, which the operating
system keeps. A power loss or kernel crash may lose the last commits.

Tables: ``messages`` (accepted, not yet handled; the reply route of a
request from the network is its client's ZeroMQ identity), ``handled`` (ids
and times, for deduplication within ``dedup_window``) and ``dead_letters``.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import fcntl
import itertools
import sqlite3
import threading
import time
from typing import TYPE_CHECKING, Any, Final

import msgpack

from .._outcome import Outcome
from ..errors import ConfigError, Rejected
from ..logging import get_logger
from ..messaging.message import Message

if TYPE_CHECKING:
    from pathlib import Path

BATCH_LIMIT: Final = 2048
"""The most writes one commit carries; more go into the next one."""
_PRUNE_INTERVAL: Final = 5.0
"""Seconds between two clean-ups of old handled ids and surplus dead letters."""

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY, body BLOB NOT NULL, route BLOB, attempts INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS handled (id TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS handled_at ON handled (at);
CREATE TABLE IF NOT EXISTS dead_letters (
    id TEXT PRIMARY KEY, body BLOB NOT NULL, attempts INTEGER NOT NULL,
    reason TEXT NOT NULL, detail TEXT NOT NULL, at REAL NOT NULL);
"""
_PUT: Final = "INSERT OR REPLACE INTO messages (id, body, route, attempts) VALUES (?, ?, ?, ?)"
_ATTEMPT: Final = "UPDATE messages SET attempts = ? WHERE id = ?"
_DELETE: Final = "DELETE FROM messages WHERE id = ?"
_HANDLED: Final = "INSERT OR REPLACE INTO handled (id, at) VALUES (?, ?)"
_DEAD: Final = (
    "INSERT OR REPLACE INTO dead_letters (id, body, attempts, reason, detail, at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


class _Batch:
    __slots__ = ("commit", "writes")

    def __init__(self) -> None:
        self.writes: list[tuple[str, tuple[Any, ...]]] = []
        self.commit: Outcome[Rejected | None] = Outcome()


@dataclasses.dataclass(frozen=True, slots=True)
class Recovered:
    """What a journal held when it was opened: the state a crash left behind."""

    messages: list[tuple[Message, bytes | None]]
    """Messages accepted and not handled, in acceptance order, each with the
    ZeroMQ identity its reply goes to (None: no one outside the process waits)."""
    handled: list[tuple[str, float]]
    """Ids handled within the dedup window and when (epoch seconds), oldest first."""
    dead_letters: list[tuple[Message, str, str, float]]
    """Kept dead letters, oldest first: message, reason, detail, epoch seconds."""


class Journal:
    """The journal of one durable level: a SQLite file, one writer thread; a `Store`.

    Args:
        path: the database file; its folder is made if missing.
        dedup_window: seconds a handled id is remembered.
        dead_letter_limit: how many dead letters are kept.
        level: the level number, for logs and errors.

    Raises:
        ConfigError: the file cannot be made, opened or locked; names ``runtime.data_dir``.
    """

    def __init__(
        self, path: Path, *, dedup_window: float, dead_letter_limit: int, level: int
    ) -> None:
        self.durable = True
        """A journal's messages outlive the process: see `Store.durable`."""
        self.path = path
        self.dedup_window = dedup_window
        self.dead_letter_limit = dead_letter_limit
        self.log = get_logger(level=level, component="journal")
        self._guard = threading.Condition(threading.Lock())
        self._batches: collections.deque[_Batch] = collections.deque()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.commits = 0
        """Transactions committed so far."""
        self.writes = 0
        """Rows written so far (inserts, updates and deletes)."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_file = path.with_name(path.name + ".lock").open("a")
        except OSError as error:
            raise _unusable(path, level, error.strerror or str(error)) from None
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.close()
            raise _unusable(path, level, "another running tierd uses this journal") from None
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as error:
            self._lock_file.close()
            raise _unusable(path, level, str(error)) from None

    # -- the caller's thread, before `start` -------------------------------------

    def recover(self) -> Recovered:
        """Read back what a previous run left; forget handled ids older than the window."""
        horizon = time.time() - self.dedup_window
        db = self._db
        db.execute("DELETE FROM handled WHERE at < ?", (horizon,))
        handled = db.execute("SELECT id, at FROM handled ORDER BY at").fetchall()
        seen = {message_id for message_id, _ in handled}
        messages = []
        for body, route, attempts in db.execute(
            "SELECT body, route, attempts FROM messages ORDER BY rowid"
        ):
            message = _from_body(body, attempts)
            if message is not None and message.id not in seen:
                messages.append((message, route))
        self._prune_dead_letters()
        dead = [
            (message, reason, detail, at)
            for body, attempts, reason, detail, at in db.execute(
                "SELECT body, attempts, reason, detail, at FROM dead_letters ORDER BY at"
            )
            if (message := _from_body(body, attempts)) is not None
        ]
        return Recovered(messages, handled, dead)

    def start(self) -> None:
        """Start the writer thread."""
        self._thread = threading.Thread(
            target=self._write_forever, name=f"tierd-journal-{self.path.stem}", daemon=True
        )
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Commit what is queued, stop the writer, close the file; later writes are refused."""
        with self._guard:
            self._closed = True
            self._guard.notify()
        if self._thread is not None:
            self._thread.join(timeout)
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        self._lock_file.close()

    # -- any thread, under a level's lock: no I/O --------------------------------

    @staticmethod
    def record(message: Message, identity: bytes | None) -> tuple[Any, ...]:
        """The ``messages`` row of an accepted message, but for its attempts (see `put`).

        Args:
            message: the accepted message.
            identity: the reply route's `durable_identity`, or None.

        Raises:
            Rejected: its payload is not msgpack-able, so it cannot be journaled.
        """
        return (message.id, _to_body(message), identity)

    def put(self, row: tuple[Any, ...], attempts: int) -> Outcome[Rejected | None]:
        """Write an accepted message's row (from `record`); return the commit to wait for."""
        return self._write(_PUT, (*row, attempts))

    def attempt(self, message_id: str, attempts: int) -> None:
        """Record that a message was handed to a daemon for the ``attempts``-th time."""
        self._write(_ATTEMPT, (attempts, message_id))

    def done(self, message_id: str) -> None:
        """A message was handled (or cancelled): forget it, remember its id for dedup."""
        self._write(_DELETE, (message_id,))
        self._write(_HANDLED, (message_id, time.time()))

    def dead_letter(self, message: Message, reason: str, detail: str, at: float) -> None:
        """A message was dead-lettered: keep it as a dead letter instead of a queued message."""
        try:
            body = _to_body(message)
        except Rejected:
            body = _to_body(message.replace(payload=None))
        self._write(_DELETE, (message.id,))
        self._write(_DEAD, (message.id, body, message.attempts, reason, detail, at))

    def forget_dead_letters(self, message_ids: list[str] | None = None) -> None:
        """Remove some dead letters (replayed or purged), or all of them with None."""
        if message_ids is None:
            self._write("DELETE FROM dead_letters", ())
        for message_id in message_ids or ():
            self._write("DELETE FROM dead_letters WHERE id = ?", (message_id,))

    def _write(self, sql: str, params: tuple[Any, ...]) -> Outcome[Rejected | None]:
        with self._guard:
            if self._closed:
                return Outcome.of(
                    Rejected(f"the journal {self.path} is closed: the runtime stopped")
                )
            batches = self._batches
            if not batches or len(batches[-1].writes) >= BATCH_LIMIT:
                batches.append(_Batch())
                self._guard.notify()
            batch = batches[-1]
            batch.writes.append((sql, params))
            return batch.commit

    # -- the writer's thread -----------------------------------------------------

    def _write_forever(self) -> None:
        next_prune = time.monotonic() + _PRUNE_INTERVAL
        while True:
            with self._guard:
                while not self._batches and not self._closed:
                    self._guard.wait(_PRUNE_INTERVAL)
                    if time.monotonic() >= next_prune:
                        break
                batch = self._batches.popleft() if self._batches else None
                if batch is None and self._closed:
                    return
            if batch is not None:
                batch.commit.set(self._commit(batch.writes))
            if time.monotonic() >= next_prune:
                self._prune()
                next_prune = time.monotonic() + _PRUNE_INTERVAL

    def _commit(self, writes: list[tuple[str, tuple[Any, ...]]]) -> Rejected | None:
        db = self._db
        try:
            db.execute("BEGIN")
            for sql, group in itertools.groupby(writes, key=lambda write: write[0]):
                db.executemany(sql, [params for _, params in group])
            db.execute("COMMIT")
        except sqlite3.Error as error:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            self.log.error("journal_write_failed", path=str(self.path), error=str(error))
            return Rejected(f"the journal {self.path} could not be written: {error}")
        self.commits += 1
        self.writes += len(writes)
        return None

    def _prune(self) -> None:
        try:
            self._db.execute("DELETE FROM handled WHERE at < ?", (time.time() - self.dedup_window,))
            self._prune_dead_letters()
        except sqlite3.Error as error:
            self.log.warning("journal_prune_failed", path=str(self.path), error=str(error))

    def _prune_dead_letters(self) -> None:
        self._db.execute(
            "DELETE FROM dead_letters WHERE id NOT IN "
            "(SELECT id FROM dead_letters ORDER BY at DESC LIMIT ?)",
            (self.dead_letter_limit,),
        )


def _unusable(path: Path, level: int, reason: str) -> ConfigError:
    return ConfigError(
        f"runtime.data_dir: cannot keep the journal of durable level {level} "
        f"in {str(path.parent)!r} ({path.name}): {reason}; choose a writable directory"
    )


def _to_body(message: Message) -> bytes:
    try:
        return msgpack.packb(message.to_fields(), use_bin_type=True)  # type: ignore[no-any-return]
    except (TypeError, ValueError, OverflowError) as error:
        raise Rejected(
            f"a durable level takes only msgpack-able payloads, and this one is not ({error})"
        ) from error


_OLD_ROW_FIELDS: Final = (
    "id", "created_at", "sender", "recipient", "kind", "priority", "payload", "parent_id",
    "timeout", "trace_id", "wait_chain",
)  # fmt: skip
"""The order of the fields in a row written as a list, by tierd 0.1.0 before `to_fields`."""


def _from_body(body: bytes, attempts: int) -> Message | None:
    """The message a journal row holds; None (and skipped) if the row cannot be read."""
    try:
        fields = msgpack.unpackb(body, raw=False)
        if isinstance(fields, list):
            fields = dict(zip(_OLD_ROW_FIELDS, fields, strict=True))
        return Message.from_fields({**fields, "status": "pending", "attempts": attempts})
    except (ValueError, TypeError, KeyError):
        get_logger(component="journal").error("journal_row_unreadable", size=len(body))
        return None
