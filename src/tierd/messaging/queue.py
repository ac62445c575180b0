"""The priority queue of one level, with one lane per recipient daemon.

Every message waits in the lane of its recipient, ordered by
(priority, arrival sequence). Taking the next message for an IDLE daemon pops
its lane: O(log n) in that lane's length, never a scan of the level's queue.
A message removed before it is taken (expired, cancelled) is marked dead in
place and skipped when it reaches the top of its lane.
"""

from __future__ import annotations

import heapq
import itertools
from typing import TYPE_CHECKING, Any

from ..errors import Rejected
from .message import MAX_PRIORITY

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .message import Message


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
    """The priority it is queued at; aging may lower this number."""
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


class LevelQueue:
    """Messages waiting for the daemons of one level.

    Args:
        limit: the most messages it holds; `put` beyond it raises
            `Rejected("queue full")`. None means no limit.
    """

    def __init__(self, limit: int | None = None) -> None:
        self._lanes: dict[str, list[tuple[int, int, QueueEntry]]] = {}
        self._by_id: dict[str, QueueEntry] = {}
        self._sequence = itertools.count()
        self._depth = [0] * (MAX_PRIORITY + 1)
        """Live messages per priority, indexed by the priority number."""
        self.limit = limit

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, message_id: str) -> bool:
        return message_id in self._by_id

    @property
    def full(self) -> bool:
        """Whether `put` would refuse a message now."""
        return self.limit is not None and len(self._by_id) >= self.limit

    def put(self, message: Message, reply_route: Any, now: float) -> QueueEntry:
        """Queue a message in its recipient's lane.

        Raises:
            Rejected: the queue already holds `limit` messages.
        """
        if self.limit is not None and len(self._by_id) >= self.limit:
            raise Rejected("queue full")
        entry = QueueEntry(message, reply_route, now, next(self._sequence))
        priority = entry.priority
        lane = self._lanes.get(message.recipient.daemon)
        if lane is None:
            lane = self._lanes[message.recipient.daemon] = []
        heapq.heappush(lane, (priority, entry.sequence, entry))
        self._by_id[message.id] = entry
        self._depth[priority] += 1
        return entry

    def requeue(self, entry: QueueEntry) -> None:
        """Put a taken entry back at its old place: same priority, same sequence.

        Used for messages handed to a daemon that crashed before handling
        them; the limit does not apply, they were accepted already.
        """
        entry.live = True
        heapq.heappush(
            self._lanes.setdefault(entry.message.recipient.daemon, []),
            (entry.priority, entry.sequence, entry),
        )
        self._by_id[entry.message.id] = entry
        self._depth[entry.priority] += 1

    def pop(self, daemon: str) -> QueueEntry | None:
        """Take the most urgent live message for ``daemon``, or None if it has none."""
        lane = self._lanes.get(daemon)
        while lane:
            entry = heapq.heappop(lane)[2]
            if entry.live:
                self._forget(entry)
                return entry
        return None

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
        while lane and not lane[0][2].live:
            heapq.heappop(lane)
        return bool(lane)

    def depth_by_priority(self) -> dict[int, int]:
        """How many messages wait at each priority (priorities with none left out)."""
        return {priority: n for priority, n in enumerate(self._depth) if n}

    def depth_of(self, daemon: str) -> int:
        """How many live messages wait for ``daemon``."""
        lane = self._lanes.get(daemon, [])
        return sum(1 for _, _, entry in lane if entry.live)

    def entries(self) -> Iterator[QueueEntry]:
        """Every live entry, in no particular order."""
        return iter(list(self._by_id.values()))

    def _forget(self, entry: QueueEntry) -> None:
        entry.live = False
        del self._by_id[entry.message.id]
        self._depth[entry.priority] -= 1
