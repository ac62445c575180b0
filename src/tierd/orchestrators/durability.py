"""What a durable level does beyond a plain one: journal what it accepts, recover after a crash.

`DurableHandling` is the half of `Level` that talks to its `Journal`; `Level`
mixes it in and calls it only when ``journal`` is set, so a level that is not
durable pays one ``is not None`` check per step. Every method here runs with
the level's lock held, except `recover`, which takes it. None of them touches
the disk: a journal write is a tuple appended to the writer's current batch;
waiting for the commit happens after the lock is released.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..errors import Rejected, RequestTimeout, UnknownRecipient
from ..messaging.queue import QueueEntry

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

    from .._outcome import Outcome
    from ..messaging.link import ReplyRoute
    from ..messaging.message import Message
    from ..messaging.queue import LevelQueue
    from .correlation import Route
    from .dead_letters import DeadLetterBox
    from .failures import Later
    from .journal import Journal, Recovered
    from .slot import DaemonSlot
    from .stats import LevelCounters


class DurableHandling:
    """Journaling and recovery, for one durable level."""

    _lock: threading.Lock
    journal: Journal | None
    queue: LevelQueue
    slots: dict[str, DaemonSlot]
    counters: LevelCounters
    dead_letters: DeadLetterBox
    log: Any

    def _enqueue(self, message: Message, route: Route, slot: DaemonSlot) -> Rejected | None:
        raise NotImplementedError

    def _refuse(
        self, message: Message, route: Route, error: Any, reason: str, later: Later
    ) -> None:
        raise NotImplementedError

    def _set_expiry(self, entry: QueueEntry, now: float) -> None:
        raise NotImplementedError

    def _dispatch(self, slot: DaemonSlot) -> None:
        raise NotImplementedError

    def _accept_durably(
        self, message: Message, route: Route, slot: DaemonSlot, later: Later
    ) -> Rejected | Outcome[Rejected | None] | None:
        """Queue (or hand over) a message and journal it; the caller waits for the commit.

        A full queue is returned, as `Level._accept` does, and nothing is journaled.
        """
        journal = self.journal
        assert journal is not None
        try:
            identity = None if route is None or isinstance(route, str) else route.durable_identity
            row = journal.record(message, identity)
        except Rejected as unjournalable:
            self._refuse(message, route, unjournalable, "not_journalable", later)
            return None
        full = self._enqueue(message, route, slot)
        if full is not None:
            return full
        # After the hand-over: the daemon's report that it finished needs this
        # lock, so its "done" is written after this "put", in order.
        return journal.put(row, message.attempts)  # 1 if handed over already

    def recover(self, recovered: Recovered, route_for: Callable[[bytes], ReplyRoute] | None) -> int:
        """Requeue what a previous run accepted and did not handle; restore its dead letters.

        Each message keeps its id, priority and attempts, and its deadline
        (created_at + timeout): one that expired meanwhile is dead-lettered
        as ``expired``. Call it before the daemons start or after: either
        way the daemons get the messages as soon as they can.

        Args:
            recovered: what `Journal.recover` read.
            route_for: makes the reply route to a client's ZeroMQ identity;
                None if the runtime serves no network (such replies are dropped).

        Returns:
            How many messages were requeued.
        """
        later: Later = []
        requeued = 0
        with self._lock:
            for message, reason, detail, at in recovered.dead_letters:
                self.dead_letters.add(message, reason, detail, at)
            now, wall = time.monotonic(), time.time()
            first = -len(recovered.messages)
            for sequence, (message, identity) in enumerate(recovered.messages, start=first):
                route = None
                if identity is not None and route_for is not None and message.kind == "request":
                    route = route_for(identity)
                slot = self.slots.get(message.recipient.daemon)
                if slot is None:
                    missing = UnknownRecipient(str(message.recipient), "no longer in the config")
                    self._refuse(message, route, missing, "unknown_recipient", later)
                    continue
                self.counters.count_received(message.kind, message.priority)
                if message.created_at + message.timeout <= wall:
                    self.counters.timeouts += 1
                    expired = RequestTimeout(message.id, str(message.recipient), message.timeout)
                    self._refuse(message, route, expired, "expired", later)
                    continue
                # Negative sequences: ahead of anything new at the same priority,
                # in the order they were first accepted; the limit does not apply.
                entry = QueueEntry(message, route, now, sequence)
                self.queue.requeue(entry)
                self._set_expiry(entry, now)
                requeued += 1
            for slot in self.slots.values():
                if slot.actor_ref is not None:
                    self._dispatch(slot)
        for action in later:
            action()
        if requeued or recovered.dead_letters:
            self.log.info(
                "journal_recovered", requeued=requeued, dead_letters=len(recovered.dead_letters),
                handled_ids=len(recovered.handled),
            )  # fmt: skip
        return requeued
