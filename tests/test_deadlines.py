"""The deadline heap and the per-timeout FIFOs: expiry order, cancellation, memory."""

from __future__ import annotations

import weakref

from tierd._deadlines import DeadlineHeap, FifoDeadlines, KeyedDeadlines


def test_deadlines_expire_in_time_order():
    """Only deadlines at or before now come out, earliest first."""
    heap: DeadlineHeap[str] = DeadlineHeap()
    for at, item in [(3.0, "c"), (1.0, "a"), (2.0, "b"), (9.0, "late")]:
        heap.add(at, item)
    assert list(heap.expired(3.0)) == ["a", "b", "c"]
    assert len(heap) == 1
    assert heap.next_at() == 9.0


def test_cancelled_deadlines_never_expire():
    """A cancelled deadline is skipped; cancelling twice is harmless."""
    heap: DeadlineHeap[int] = DeadlineHeap()
    deadlines = [heap.add(float(n), n) for n in range(10)]
    for deadline in deadlines[::2]:
        heap.cancel(deadline)
        heap.cancel(deadline)
    assert list(heap.expired(100.0)) == [1, 3, 5, 7, 9]
    assert len(heap) == 0


def test_compaction_keeps_every_live_deadline():
    """Rebuilding the heap after many cancellations loses no live deadline."""
    heap: DeadlineHeap[int] = DeadlineHeap()
    deadlines = [heap.add(float(n), n) for n in range(10_000)]
    for number, deadline in enumerate(deadlines):
        if number % 10:
            heap.cancel(deadline)
    assert len(heap._heap) < 5_000  # compacted, not just marked
    assert list(heap.expired(1e9)) == list(range(0, 10_000, 10))


def test_a_cancelled_deadline_lets_go_of_its_item():
    """Cancelling drops the heap's reference to the item at once, before any compaction."""

    class Item:
        pass

    heap: DeadlineHeap[Item] = DeadlineHeap()
    item = Item()
    kept = weakref.ref(item)
    deadline = heap.add(1.0, item)
    del item
    assert kept() is not None
    heap.cancel(deadline)
    assert kept() is None
    assert heap.next_at() is None


class _Queued:
    """What `FifoDeadlines` holds: anything with a ``deadline`` attribute."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.deadline: object = None


def test_fifo_deadlines_expire_in_order_and_refuse_an_earlier_deadline():
    """Each timeout's FIFO stays sorted: a deadline earlier than its last is refused."""
    fifos = FifoDeadlines()
    a, b, c, early = _Queued("a"), _Queued("b"), _Queued("c"), _Queued("early")
    assert fifos.add(30.0, 10.0, a)
    assert fifos.add(30.0, 11.0, b)
    assert fifos.add(5.0, 3.0, c)
    assert not fifos.add(30.0, 10.5, early)  # the caller puts it in the heap
    assert early.deadline is None
    assert sorted(q.name for q in fifos.expired(10.5)) == ["a", "c"]  # by FIFO, not by time
    assert [q.name for q in fifos.expired(100.0)] == ["b"]
    assert len(fifos) == 0
    assert a.deadline is None


def test_a_cancelled_and_requeued_fifo_deadline_expires_once_at_its_new_place():
    """A position whose item got a new deadline since is dead, even at the same time."""
    fifos = FifoDeadlines()
    first, second = _Queued("first"), _Queued("second")
    assert fifos.add(30.0, 1.0, first)
    assert fifos.add(30.0, float("2"), second)  # computed, as a level computes deadlines
    fifos.cancel(30.0, second)  # taken by a daemon, still in the middle of the FIFO
    assert fifos.add(30.0, float("2"), second)  # requeued after a crash, an equal deadline
    assert len(fifos) == 2
    assert [q.name for q in fifos.expired(5.0)] == ["first", "second"]
    assert len(fifos) == 0
    assert fifos._fifos == {}  # emptied FIFOs are dropped by the sweep


def test_fifo_deadlines_memory_follows_the_live_items():
    """Cancelled positions are dropped or compacted: memory is not throughput x timeout."""
    fifos = FifoDeadlines()
    items = [_Queued(str(n)) for n in range(20_000)]
    for n, item in enumerate(items):
        assert fifos.add(30.0, float(n), item)
    for n, item in enumerate(items):
        if n % 10:  # cancelled out of order: only every tenth stays
            fifos.cancel(30.0, item)
    held = sum(len(fifo.items) for fifo in fifos._fifos.values())
    assert held < 5_000
    assert len(fifos) == 2_000
    assert [q.name for q in fifos.expired(1e9)] == [str(n) for n in range(0, 20_000, 10)]
    for item in items[:100]:  # cancelled in arrival order (the usual case): nothing is kept
        fifos.add(30.0, 2e9, item)
        fifos.cancel(30.0, item)
    assert sum(len(fifo.items) for fifo in fifos._fifos.values()) == 0


def test_keyed_deadlines_take_by_key_by_age_or_by_time():
    """Taken by key, an item never expires; the oldest comes first; expiry is in time order."""
    waiting: KeyedDeadlines[str, str] = KeyedDeadlines()
    waiting.add("a", 5.0, "first")
    waiting.add("b", 1.0, "second")
    waiting.add("c", 3.0, "third")
    assert waiting.pop("a") == "first"
    assert waiting.pop("a") is None
    assert waiting.expired(10.0) == ["second", "third"]
    waiting.add("d", 1.0, "fourth")
    waiting.add("e", 2.0, "fifth")
    assert waiting.oldest() == "fourth"
    assert waiting.drain() == ["fifth"]
    assert not waiting.by_key
    assert waiting.expired(100.0) == []
