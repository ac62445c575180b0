"""`QueueExpiry`: the deadlines of a level's queued messages.

A queued message may wait at most what is left of its timeout. Messages with
the same timeout reach a level in (nearly) the order they expire, so most
deadlines go in one FIFO per distinct timeout (`FifoDeadlines`, no heap push
and no handle per message); the few that do not fit (a requeued message, one
that waited elsewhere, a seventeenth distinct timeout) go in a heap. A sweep
looks at the head of each, whatever is queued.

An entry's ``deadline`` attribute says where its deadline is kept: the float
of its FIFO position, or the heap's integer handle.

`HandlingDeadlines` keeps the deadlines of requests *being handled* for a
caller outside this runtime (a network client, a peer): the runtime owns
their timeout, so it is counted and the caller told even while the handler
runs on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._deadlines import DeadlineHeap, FifoDeadlines, KeyedDeadlines

if TYPE_CHECKING:
    from ._queue import QueueEntry


class QueueExpiry:
    """When each queued entry of one level expires."""

    __slots__ = ("_fifos", "_heap")

    def __init__(self) -> None:
        self._fifos = FifoDeadlines()
        self._heap: DeadlineHeap[QueueEntry] = DeadlineHeap()

    def __len__(self) -> int:
        return len(self._fifos) + len(self._heap)

    def add(self, entry: QueueEntry, at: float) -> None:
        """Expire ``entry`` at monotonic ``at`` unless it is cancelled first."""
        if not self._fifos.add(entry.message.timeout, at, entry):
            entry.deadline = self._heap.add(at, entry)

    def cancel(self, entry: QueueEntry) -> None:
        """Forget ``entry``'s deadline, wherever it is kept."""
        deadline = entry.deadline
        if type(deadline) is float:  # see `FifoDeadlines`: the handle is its float
            self._fifos.cancel(entry.message.timeout, entry)
        else:
            self._heap.cancel(deadline)

    def expired(self, now: float) -> list[QueueEntry]:
        """Take every entry whose deadline is at or before ``now``."""
        due: list[QueueEntry] = self._fifos.expired(now)
        due.extend(self._heap.expired(now))
        return due


class HandlingDeadlines:
    """When requests handed to a daemon for a caller outside the runtime run out of time."""

    __slots__ = ("_in_hand",)

    def __init__(self) -> None:
        self._in_hand: KeyedDeadlines[str, tuple[str, QueueEntry]] = KeyedDeadlines()

    def __len__(self) -> int:
        return len(self._in_hand)

    def add(self, daemon: str, entry: QueueEntry, at: float) -> None:
        """Time out ``entry``, held by ``daemon``, at monotonic ``at`` unless it finishes first."""
        self._in_hand.add(entry.message.id, at, (daemon, entry))

    def finished(self, message_id: str) -> None:
        """The request was answered (or failed) in time: forget its deadline, if it has one."""
        self._in_hand.pop(message_id)

    def expired(self, now: float) -> list[tuple[str, QueueEntry]]:
        """Take every (daemon, entry) whose deadline is at or before ``now``."""
        return self._in_hand.expired(now)
