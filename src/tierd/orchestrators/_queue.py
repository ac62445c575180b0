"""The priority queue of one level, with one lane per recipient daemon.

Every message waits in the lane of its recipient. A lane is one FIFO deque
per priority (1..20), so a lane is ordered by (priority, arrival sequence)
and taking the next message for a daemon looks at no more than the 20 deque
heads: O(1) in the number of queued messages.

With *aging* (``aging`` seconds, 0 = off, strict priority) a waiting message
moves up one priority step per ``aging`` seconds waited: the next message is
the head with the lowest effective priority
``priority - floor(waited / aging)``, ties going to the earlier arrival.
Only heads need comparing: within one deque the head has waited longest.

A message removed before it is taken (expired, cancelled) is marked dead in
place and skipped when it reaches the head of its deque.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import itertools
import time
from typing import TYPE_CHECKING, Any

from ..errors import Rejected
from ..messaging.message import MAX_PRIORITY, MIN_PRIORITY

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..messaging.message import Message


class QueueEntry:
    """A message waiting in a lane, with what the orchestrator needs to answer it."""

    __slots__ = (
        "deadline",
        "enqueued_at",
        "live",
        "message",
        "priority",
        "reply_route",
        "sequence",
    )

    message: Message
    """The waiting message."""
    reply_route: Any
    """Where the reply goes (None for notifications); opaque to the queue."""
    enqueued_at: float
    """Monotonic seconds when it was queued, for the dispatch-latency metric."""
    priority: int
    """The priority it is queued at (aging never changes it; it is computed at pop)."""
    sequence: int
    """Arrival order, the tie-break within a priority."""
    live: bool
    """False while the entry is not in the queue (taken, removed, in flight)."""
    deadline: Any
    """The owner's handle for expiring the entry; opaque to the queue."""

    def __init__(
        self, message: Message, reply_route: Any, enqueued_at: float, sequence: int
    ) -> None:
        self.message = message
        self.reply_route = reply_route
        self.enqueued_at = enqueued_at
        self.priority = message.priority
        self.sequence = sequence
        self.live = True
        self.deadline = None


class _Lane:
    """The messages waiting for one daemon: one FIFO deque per priority."""

    __slots__ = ("by_priority", "live")

    def __init__(self) -> None:
        self.by_priority: list[collections.deque[QueueEntry]] = [
            collections.deque() for _ in range(MAX_PRIORITY + 1)
        ]
        self.live = 0
        """Live entries in the lane; dead ones still in a deque are not counted."""

    def head(self, priority: int) -> QueueEntry | None:
        """The oldest live entry at ``priority``, dropping dead ones on the way."""
        waiting = self.by_priority[priority]
        while waiting:
            entry = waiting[0]
            if entry.live:
                return entry
            waiting.popleft()
        return None


_PRIORITIES = range(MIN_PRIORITY, MAX_PRIORITY + 1)


class LevelQueue:
    """Messages waiting for the daemons of one level.

    Args:
        limit: the most messages it holds; `put` beyond it raises
            `Rejected("queue full")`. None means no limit.
        aging: seconds of waiting that move a message up one priority step;
            0 keeps strict priority.
        clock: monotonic seconds, the clock of ``enqueued_at`` (for aging).
    """

    def __init__(
        self, limit: int | None = None, aging: float = 0.0, clock: Any = time.monotonic
    ) -> None:
        self._lanes: dict[str, _Lane] = {}
        self._by_id: dict[str, QueueEntry] = {}
        self._sequence = itertools.count()
        self._depth = [0] * (MAX_PRIORITY + 1)
        """Live messages per priority, indexed by the priority number."""
        self.limit = limit
        self.aging = aging
        self._clock = clock

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, message_id: str) -> bool:
        return message_id in self._by_id

    @property
    def full(self) -> bool:
        """Whether `put` would refuse a message now."""
        return self.limit is not None and len(self._by_id) >= self.limit

    def put(self, message: Message, reply_route: Any, now: float) -> QueueEntry:
        """Queue a message in its recipient's lane; ``now`` is monotonic seconds.

        Raises:
            Rejected: the queue already holds `limit` messages.
        """
        if self.limit is not None and len(self._by_id) >= self.limit:
            raise Rejected("queue full")
        entry = QueueEntry(message, reply_route, now, next(self._sequence))
        daemon = message.recipient.daemon
        lane = self._lanes.get(daemon)
        if lane is None:
            lane = self._lanes[daemon] = _Lane()
        lane.by_priority[entry.priority].append(entry)
        lane.live += 1
        self._by_id[message.id] = entry
        self._depth[entry.priority] += 1
        return entry

    @contextlib.contextmanager
    def unlimited(self) -> Iterator[None]:
        """Let `put` go beyond the limit: for messages whose room was reserved earlier."""
        limit, self.limit = self.limit, None
        try:
            yield
        finally:
            self.limit = limit

    def requeue(self, entry: QueueEntry) -> None:
        """Put a taken entry back at its old place: same priority, same sequence.

        Used for messages handed to a daemon that crashed before handling
        them, and for retries; the limit does not apply, they were accepted
        already.
        """
        entry.live = True
        lane = self._lanes.setdefault(entry.message.recipient.daemon, _Lane())
        waiting = lane.by_priority[entry.priority]
        if not waiting or waiting[0].sequence > entry.sequence:
            waiting.appendleft(entry)  # the usual case: it was taken from the head
        else:
            place = bisect.bisect_left(waiting, entry.sequence, key=_sequence_of)
            waiting.insert(place, entry)
        lane.live += 1
        self._by_id[entry.message.id] = entry
        self._depth[entry.priority] += 1

    def pop(self, daemon: str) -> QueueEntry | None:
        """Take the most urgent live message for ``daemon``, or None if it has none."""
        lane = self._lanes.get(daemon)
        if lane is None or not lane.live:
            return None
        if self.aging:
            entry = self._aged_head(lane)
            assert entry is not None  # lane.live > 0
            lane.by_priority[entry.priority].popleft()
            self._forget(entry)
            return entry
        # `_Lane.head` inlined: a pop at normal priority looks at ten deques,
        # and ten method calls were a third of the pop's cost (cProfile).
        for waiting in lane.by_priority:  # index 0 is never used: always empty
            while waiting:
                entry = waiting.popleft()
                if entry.live:  # `_forget`, with the lane at hand
                    entry.live = False
                    lane.live -= 1
                    del self._by_id[entry.message.id]
                    self._depth[entry.priority] -= 1
                    return entry
        raise AssertionError("a lane with live entries has none at any priority")

    def _aged_head(self, lane: _Lane) -> QueueEntry | None:
        """The head with the lowest effective priority; the earlier arrival on a tie."""
        now, aging = self._clock(), self.aging
        best: QueueEntry | None = None
        best_key = (0, 0)
        for priority in _PRIORITIES:
            entry = lane.head(priority)
            if entry is None:
                continue
            key = (priority - int((now - entry.enqueued_at) // aging), entry.sequence)
            if best is None or key < best_key:
                best, best_key = entry, key
        return best

    def remove(self, message_id: str) -> QueueEntry | None:
        """Take a message out wherever it waits; None if it is not queued."""
        entry = self._by_id.get(message_id)
        if entry is not None:
            self._forget(entry)
        return entry

    def drain(self, daemon: str) -> list[QueueEntry]:
        """Take every live message for ``daemon``, most urgent first."""
        taken = []
        while (entry := self.pop(daemon)) is not None:
            taken.append(entry)
        return taken

    @staticmethod
    def unqueued(message: Message, reply_route: Any, now: float) -> QueueEntry:
        """An entry for a message handed over at once, never queued."""
        entry = QueueEntry(message, reply_route, now, -1)
        entry.live = False
        return entry

    def has_waiting(self, daemon: str) -> bool:
        """Whether ``daemon`` has at least one live message queued."""
        lane = self._lanes.get(daemon)
        return lane is not None and lane.live > 0

    def depth_by_priority(self) -> dict[int, int]:
        """How many messages wait at each priority (priorities with none left out)."""
        return {priority: n for priority, n in enumerate(self._depth) if n}

    def depth_of(self, daemon: str) -> int:
        """How many live messages wait for ``daemon``."""
        lane = self._lanes.get(daemon)
        return lane.live if lane is not None else 0

    def entries(self) -> Iterator[QueueEntry]:
        """Every live entry, in no particular order."""
        return iter(list(self._by_id.values()))

    def _forget(self, entry: QueueEntry) -> None:
        entry.live = False
        del self._by_id[entry.message.id]
        self._depth[entry.priority] -= 1
        self._lanes[entry.message.recipient.daemon].live -= 1


def _sequence_of(entry: QueueEntry) -> int:
    return entry.sequence
