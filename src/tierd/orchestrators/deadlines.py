"""Deadlines kept in a heap, so that a sweep costs nothing for what has not expired.

A sweep looks at the top of the heap and stops at the first deadline still in
the future: O(1) when nothing expired, O(k log n) for k expired entries.
Cancelled deadlines stay in the heap, marked dead, and are skipped; when dead
entries outnumber live ones the heap is rebuilt, so memory follows the live
count and the rebuild cost is amortised over the cancellations that caused it.
"""

from __future__ import annotations

import heapq
import itertools
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Iterator

T = TypeVar("T")

_COMPACT_FLOOR = 1024
"""Below this many dead entries a rebuild is not worth its cost."""


class Deadline(Generic[T]):
    """One deadline; keep it to `DeadlineHeap.cancel` it later."""

    __slots__ = ("at", "item", "live", "sequence")

    def __init__(self, at: float, sequence: int, item: T) -> None:
        self.at = at
        self.sequence = sequence
        self.item = item
        self.live = True

    def __lt__(self, other: Deadline[T]) -> bool:
        return (self.at, self.sequence) < (other.at, other.sequence)


class DeadlineHeap(Generic[T]):
    """Items that expire at monotonic times."""

    def __init__(self) -> None:
        self._heap: list[Deadline[T]] = []
        self._sequence = itertools.count()
        self._dead = 0

    def __len__(self) -> int:
        """How many live deadlines there are."""
        return len(self._heap) - self._dead

    def add(self, at: float, item: T) -> Deadline[T]:
        """Add ``item`` to expire at monotonic time ``at``."""
        deadline = Deadline(at, next(self._sequence), item)
        heapq.heappush(self._heap, deadline)
        return deadline

    def cancel(self, deadline: Deadline[T]) -> None:
        """Forget a deadline; cancelling twice, or after expiry, does nothing."""
        if deadline.live:
            deadline.live = False
            self._dead += 1
            if self._dead > _COMPACT_FLOOR and self._dead > len(self._heap) // 2:
                self._heap = [d for d in self._heap if d.live]
                heapq.heapify(self._heap)
                self._dead = 0

    def next_at(self) -> float | None:
        """When the earliest live deadline expires, or None if there is none."""
        heap = self._heap
        while heap and not heap[0].live:
            heapq.heappop(heap)
            self._dead -= 1
        return heap[0].at if heap else None

    def expired(self, now: float) -> Iterator[T]:
        """Pop and yield every live item whose deadline is at or before ``now``."""
        heap = self._heap
        while heap and heap[0].at <= now:
            deadline = heapq.heappop(heap)
            if deadline.live:
                deadline.live = False
                yield deadline.item
            else:
                self._dead -= 1
