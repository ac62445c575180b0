"""The waiting room alone: bounded, oldest first, expiry, drain."""

from __future__ import annotations

from tierd.messaging.message import Address, Message
from tierd.orchestrators._waiting_room import RoomWaiter, WaitingRoom


def _waiter(n: int) -> RoomWaiter:
    return RoomWaiter(Message.notification(Address("a", 0), Address("b", 1), n), None, print)


def test_the_room_is_bounded_and_lets_the_oldest_out_first():
    """Beyond the limit `park` says no; `next` is first in, first out."""
    room = WaitingRoom(limit=2)
    first, second, third = _waiter(1), _waiter(2), _waiter(3)
    assert room.park(first, 10.0)
    assert room.park(second, 10.0)
    assert not room.park(third, 10.0)
    assert room.next() is first
    assert room.next() is second
    assert room.next() is None
    assert not room.parked


def test_a_taken_waiter_never_expires_and_an_expired_one_is_gone():
    """Expiry takes only the waiters still parked at their deadline."""
    room = WaitingRoom()
    taken, expiring, staying = _waiter(1), _waiter(2), _waiter(3)
    room.park(taken, 1.0)
    room.park(expiring, 2.0)
    room.park(staying, 9.0)
    assert room.next() is taken
    assert room.expired(5.0) == [expiring]
    assert len(room) == 1
    assert room.drain() == [staying]
    assert room.expired(100.0) == []
