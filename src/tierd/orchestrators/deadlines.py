"""Deadlines kept in a heap, so that a sweep costs nothing for what has not expired.

A sweep looks at the top of the heap and stops at the first deadline still in
the future: O(1) when nothing expired, O(k log n) for k expired entries.
Cancelled deadlines stay in the heap, marked dead, and are skipped; when dead
entries outnumber live ones the heap is rebuilt, so memory follows the live
count and the rebuild cost is amortised over the cancellations that caused it.

A deadline is a plain list ``[at, sequence, item]``: lists compare in C, by
time and then by a unique sequence, several times faster than a class with
``__lt__`` on the hot path where every queued message gets one.
"""

from __future__ import annotations

import heapq
import itertools
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Iterator

T = TypeVar("T")

Deadline = list[Any]
"""``[at, sequence, item]``; item is `_DEAD` once cancelled or expired."""

_AT, _SEQUENCE, _ITEM = 0, 1, 2
_DEAD: Any = object()
_COMPACT_FLOOR = 1024
"""Below this many dead entries a rebuild is not worth its cost."""


class DeadlineHeap(Generic[T]):
    """Items that expire at monotonic times."""

    def __init__(self) -> None:
        self._heap: list[Deadline] = []
        self._sequence = itertools.count()
        self._dead = 0

    def __len__(self) -> int:
        """How many live deadlines there are."""
        return len(self._heap) - self._dead

    def add(self, at: float, item: T) -> Deadline:
        """Add ``item`` to expire at monotonic time ``at``; keep the result to cancel it."""
        deadline = [at, next(self._sequence), item]
        heapq.heappush(self._heap, deadline)
        return deadline

    def cancel(self, deadline: Deadline) -> None:
        """Forget a deadline; cancelling twice, or after expiry, does nothing."""
        if deadline[_ITEM] is not _DEAD:
            deadline[_ITEM] = _DEAD
            self._dead += 1
            if self._dead > _COMPACT_FLOOR and self._dead > len(self._heap) // 2:
                self._heap = [d for d in self._heap if d[_ITEM] is not _DEAD]
                heapq.heapify(self._heap)
                self._dead = 0

    def next_at(self) -> float | None:
        """When the earliest live deadline expires, or None if there is none."""
        heap = self._heap
        while heap and heap[0][_ITEM] is _DEAD:
            heapq.heappop(heap)
            self._dead -= 1
        return heap[0][_AT] if heap else None

    def expired(self, now: float) -> Iterator[T]:
        """Pop and yield every live item whose deadline is at or before ``now``."""
        heap = self._heap
        while heap and heap[0][_AT] <= now:
            deadline = heapq.heappop(heap)
            item = deadline[_ITEM]
            if item is _DEAD:
                self._dead -= 1
            else:
                deadline[_ITEM] = _DEAD
                yield item
