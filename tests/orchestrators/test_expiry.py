"""Deadlines of queued entries: in their timeout's FIFO or in the heap, cancelled either way."""

from __future__ import annotations

from tierd.messaging.message import Address, Message
from tierd.orchestrators._expiry import QueueExpiry
from tierd.orchestrators._queue import QueueEntry


def _entry(n: int, timeout: float = 30.0) -> QueueEntry:
    message = Message.notification(Address("a", 0), Address("b", 1), n, timeout=timeout)
    return QueueEntry(message, None, 0.0, n)


def test_in_order_deadlines_and_an_earlier_one_all_expire_on_time():
    """An earlier deadline than its FIFO's last goes to the heap and still expires first."""
    expiry = QueueExpiry()
    late, early = _entry(1), _entry(2)
    expiry.add(late, 10.0)
    expiry.add(early, 5.0)  # does not fit the FIFO: the heap keeps it
    assert type(late.deadline) is float
    assert type(early.deadline) is int
    assert expiry.expired(4.9) == []
    assert expiry.expired(5.0) == [early]
    assert expiry.expired(10.0) == [late]
    assert len(expiry) == 0


def test_a_cancelled_entry_never_expires_wherever_it_was_kept():
    """Cancel works on a FIFO position and on a heap handle alike."""
    expiry = QueueExpiry()
    in_fifo, in_heap, kept = _entry(1), _entry(2), _entry(3)
    expiry.add(in_fifo, 10.0)
    expiry.add(kept, 11.0)
    expiry.add(in_heap, 1.0)
    expiry.cancel(in_fifo)
    expiry.cancel(in_heap)
    assert expiry.expired(100.0) == [kept]
