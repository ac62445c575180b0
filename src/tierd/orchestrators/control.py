"""Operator control of a level: pause and resume, statistics, and its dead letters.

`LevelControl` is mixed into `Level`. Every entry point takes the level's
lock; a replay hands the messages to their levels only after releasing it,
so that no thread holds two levels' locks.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..errors import TierdError
from ..messaging.message import new_id
from .stats import LevelStatistics

if TYPE_CHECKING:
    import threading
    from collections.abc import Collection

    from ..messaging.link import Router
    from ..messaging.queue import LevelQueue
    from .correlation import PendingRequest
    from .dead_letters import DeadLetter, DeadLetterBox
    from .failures import Later
    from .journal import Journal
    from .slot import DaemonSlot
    from .stats import LevelCounters


class LevelControl:
    """Pausing, snapshots and dead letters, for one level."""

    _lock: threading.Lock
    number: int
    router: Router
    queue: LevelQueue
    slots: dict[str, DaemonSlot]
    pending: dict[str, PendingRequest]
    counters: LevelCounters
    dead_letters: DeadLetterBox
    waiting_room: dict[str, Any]
    journal: Journal | None
    log: Any

    if TYPE_CHECKING:  # provided by Level and its other mixins

        def _dispatch(self, slot: DaemonSlot) -> None:
            raise NotImplementedError

        def _admit_waiting(self, later: Later) -> None:
            raise NotImplementedError

    def set_paused(self, daemon: str, *, paused: bool) -> bool:
        """Pause or resume one daemon; False if the level has no such daemon.

        A paused daemon is handed nothing; its messages wait in the queue and
        still expire on time.
        """
        later: Later = []
        with self._lock:
            slot = self.slots.get(daemon)
            if slot is None:
                return False
            slot.paused = paused
            self.log.info("daemon_paused" if paused else "daemon_resumed", daemon=daemon)
            self._dispatch(slot)
            if self.waiting_room:
                self._admit_waiting(later)
        for action in later:
            action()
        return True

    def statistics(self) -> LevelStatistics:
        """A snapshot of the level."""
        with self._lock:
            counters = self.counters
            return LevelStatistics(
                level=self.number,
                received=dict(counters.received),
                dispatched=counters.dispatched,
                completed=dict(counters.completed),
                processed=counters.processed,
                timeouts=counters.timeouts,
                late_replies=counters.late_replies,
                dead_letters=dict(counters.dead_letters),
                queue_depth=self.queue.depth_by_priority(),
                in_flight_requests=len(self.pending),
                dispatch_latency=counters.dispatch_latency.snapshot(),
                daemons=tuple(
                    slot.statistics(self.queue.depth_of(daemon))
                    for daemon, slot in self.slots.items()
                ),
                rejected=dict(counters.rejected),
                retries=counters.retries,
                waiting_for_room=len(self.waiting_room),
            )

    # -- dead letters -------------------------------------------------------------

    def dead_letter_list(self) -> list[DeadLetter]:
        """The dead letters kept, oldest first."""
        with self._lock:
            return self.dead_letters.letters()

    def purge_dead_letters(self, ids: Collection[str] | None = None) -> int:
        """Forget dead letters: those whose message id is in ``ids``, or all; how many."""
        with self._lock:
            taken = self.dead_letters.take(ids)
            if self.journal is not None:
                self.journal.forget_dead_letters([letter.message.id for letter in taken])
            return len(taken)

    def replay_dead_letters(self, ids: Collection[str] | None = None) -> dict[str, str]:
        """Send dead letters again, as new messages; remove them from the box.

        Each replayed message gets a new id (so that no deduplication window
        drops it), a fresh timeout and zero attempts; its payload, priority,
        kind, sender, recipient and trace id are kept. A replayed request has
        no one waiting for its reply any more: the reply is dropped. A letter
        whose level refuses it again (queue full, unknown recipient) stays in
        the box.

        Args:
            ids: the message ids to replay; None replays every letter.

        Returns:
            Each replayed message's old id and its new id.
        """
        with self._lock:
            letters = self.dead_letters.take(ids)
        replayed: dict[str, str] = {}
        for letter in letters:
            old = letter.message
            fresh = old.replace(
                id=new_id(),
                created_at=time.time(),
                parent_id=None,
                status="pending",
                attempts=0,
                wait_chain=(),
            )
            try:
                self.router.check(fresh.recipient).submit(fresh, None)
            except TierdError as refused:
                with self._lock:
                    self.dead_letters.add(old, letter.reason, f"{letter.detail}; replay: {refused}")
                continue
            replayed[old.id] = fresh.id
        if replayed:
            if self.journal is not None:
                with self._lock:
                    self.journal.forget_dead_letters(list(replayed))
            self.log.info("dead_letters_replayed", count=len(replayed))
        return replayed
