"""Deadlines kept in a heap, so that a sweep costs nothing for what has not expired.

A sweep looks at the top of the heap and stops at the first deadline still in
the future: O(1) when nothing expired, O(k log n) for k expired entries.
Cancelled deadlines stay in the heap, marked dead, and are skipped; when dead
entries outnumber live ones the heap is rebuilt, so memory follows the live
count and the rebuild cost is amortised over the cancellations that caused it.

The heap holds plain ``(at, sequence)`` tuples and a dict maps each live
sequence to its item; the sequence is the handle that cancels it. Tuples of a
float and an int compare in C, several times faster than a class with
``__lt__``, and the collector stops tracking a tuple that holds only such
atoms after the first collection it survives: with a deep queue (every queued
message has a deadline) a ``[at, sequence, item]`` list was one more container
for every later collection to traverse, and the collector was a third of the
producer's time (``benchmarks/hot_path.py``).
"""

from __future__ import annotations

import collections
import heapq
import itertools
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Iterator

T = TypeVar("T")

Deadline = int
"""The handle `DeadlineHeap.add` returns: the deadline's unique sequence number."""

_GONE: Final[Any] = object()
_COMPACT_FLOOR = 1024
"""Below this many dead entries a rebuild is not worth its cost."""


class DeadlineHeap(Generic[T]):
    """Items that expire at monotonic times."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int]] = []
        self._items: dict[int, T] = {}
        """Live items by sequence; a heap entry whose sequence is not here is dead."""
        self._sequence = itertools.count()

    def __len__(self) -> int:
        """How many live deadlines there are."""
        return len(self._items)

    def add(self, at: float, item: T) -> Deadline:
        """Add ``item`` to expire at monotonic time ``at``; keep the result to cancel it."""
        sequence = next(self._sequence)
        heapq.heappush(self._heap, (at, sequence))
        self._items[sequence] = item
        return sequence

    def cancel(self, deadline: Deadline) -> None:
        """Forget a deadline; cancelling twice, or after expiry, does nothing."""
        items = self._items
        if items.pop(deadline, _GONE) is not _GONE:
            heap = self._heap
            dead = len(heap) - len(items)
            if dead > _COMPACT_FLOOR and dead > len(heap) // 2:
                self._heap = [entry for entry in heap if entry[1] in items]
                heapq.heapify(self._heap)

    def next_at(self) -> float | None:
        """When the earliest live deadline expires, or None if there is none."""
        heap, items = self._heap, self._items
        while heap and heap[0][1] not in items:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def expired(self, now: float) -> Iterator[T]:
        """Pop and yield every live item whose deadline is at or before ``now``."""
        heap, items = self._heap, self._items
        while heap and heap[0][0] <= now:
            item = items.pop(heapq.heappop(heap)[1], _GONE)
            if item is not _GONE:
                yield item


class _Fifo:
    __slots__ = ("ats", "dead", "items")

    def __init__(self) -> None:
        self.ats: collections.deque[float] = collections.deque()
        self.items: collections.deque[Any] = collections.deque()
        self.dead = 0
        """Positions whose item was cancelled, still in the deques."""


_MAX_FIFOS = 16
"""Distinct timeouts with a FIFO of their own; others go to the heap."""


class FifoDeadlines:
    """Deadlines of queued messages: one FIFO per distinct timeout, in deadline order.

    Messages with the same timeout reach a level in (nearly) the order they
    expire, so a FIFO per timeout holds them sorted with an O(1) append and
    no allocation: no heap push, no handle object per message. `add` takes a
    deadline only if it is not earlier than the last one of its FIFO (a
    requeued message, or one that waited elsewhere, is refused and the caller
    puts it in its `DeadlineHeap`), so every FIFO stays sorted and a sweep
    stops at each FIFO's first deadline in the future: O(FIFOs + expired),
    whatever is queued.

    An item's ``deadline`` attribute is the very float object stored beside
    it in the FIFO; cancelling sets it to None, and a position whose item's
    ``deadline`` *is not* its stored float is dead (cancelled, or cancelled
    and given a new deadline since: identity, because a requeued message's new
    deadline may equal the old one). Dead heads are dropped at once, and a FIFO
    whose dead positions outnumber its live ones is rebuilt, so memory
    follows the live messages, not throughput times timeout.
    """

    def __init__(self) -> None:
        self._fifos: dict[float, _Fifo] = {}

    def __len__(self) -> int:
        """How many live deadlines there are."""
        return sum(len(fifo.items) - fifo.dead for fifo in self._fifos.values())

    def add(self, timeout: float, at: float, item: Any) -> bool:
        """Give ``item`` the deadline ``at`` in ``timeout``'s FIFO; False if it does not fit."""
        fifo = self._fifos.get(timeout)
        if fifo is None:
            if len(self._fifos) >= _MAX_FIFOS:
                return False
            fifo = self._fifos[timeout] = _Fifo()
        elif fifo.ats and at < fifo.ats[-1]:
            return False
        fifo.ats.append(at)
        fifo.items.append(item)
        item.deadline = at
        return True

    def cancel(self, timeout: float, item: Any) -> None:
        """Forget ``item``'s deadline, added under ``timeout``."""
        item.deadline = None
        fifo = self._fifos[timeout]
        fifo.dead += 1
        ats, items = fifo.ats, fifo.items
        while items and items[0].deadline is not ats[0]:
            ats.popleft()
            items.popleft()
            fifo.dead -= 1
        if fifo.dead > _COMPACT_FLOOR and fifo.dead > len(items) // 2:
            live = [(at, it) for at, it in zip(ats, items, strict=True) if it.deadline is at]
            fifo.ats = collections.deque(at for at, _ in live)
            fifo.items = collections.deque(it for _, it in live)
            fifo.dead = 0

    def expired(self, now: float) -> list[Any]:
        """Pop every live item whose deadline is at or before ``now``; drop emptied FIFOs."""
        due: list[Any] = []
        emptied: list[float] = []
        for timeout, fifo in self._fifos.items():
            ats = fifo.ats
            if ats and ats[0] > now:
                continue  # the usual case: one comparison per FIFO
            items = fifo.items
            while ats and ats[0] <= now:
                at, item = ats.popleft(), items.popleft()
                if item.deadline is at:
                    item.deadline = None
                    due.append(item)
                else:
                    fifo.dead -= 1
            if not ats:
                emptied.append(timeout)
        for timeout in emptied:
            del self._fifos[timeout]
        return due


K = TypeVar("K")


class KeyedDeadlines(Generic[K, T]):
    """Items by key, each with a deadline: what a level waits on, found by id or by time.

    Taking an item by its key forgets its deadline; a sweep takes what is
    due. Keys keep their insertion order, so the oldest item is the first.
    """

    __slots__ = ("_heap", "by_key")

    def __init__(self) -> None:
        self.by_key: dict[K, tuple[T, Deadline]] = {}
        """Each item and its deadline's handle, oldest first; read only outside this class.

        A plain dict, so that ``if waiting.by_key`` is a test done in C on a hot path."""
        self._heap: DeadlineHeap[K] = DeadlineHeap()

    def __len__(self) -> int:
        return len(self.by_key)

    def __bool__(self) -> bool:
        return bool(self.by_key)

    def add(self, key: K, at: float, item: T) -> None:
        """Keep ``item`` under ``key`` until it is taken or monotonic ``at`` passes."""
        self.by_key[key] = (item, self._heap.add(at, key))

    def pop(self, key: K) -> T | None:
        """Take the item under ``key`` and forget its deadline; None if there is none."""
        found = self.by_key.pop(key, None)
        if found is None:
            return None
        self._heap.cancel(found[1])
        return found[0]

    def oldest(self) -> T | None:
        """Take the item added first, or None if there is none."""
        if not self.by_key:
            return None
        return self.pop(next(iter(self.by_key)))

    def expired(self, now: float) -> list[T]:
        """Take every item whose deadline is at or before ``now``, earliest first."""
        return [self.by_key.pop(key)[0] for key in self._heap.expired(now)]

    def drain(self) -> list[T]:
        """Take every item, oldest first."""
        items = [item for item, _ in self.by_key.values()]
        self.by_key.clear()
        self._heap = DeadlineHeap()
        return items
