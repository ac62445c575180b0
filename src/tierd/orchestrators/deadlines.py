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
