"""The waiting room of a full level: senders that asked to wait for room.

A level queues at most ``queue_limit`` messages. Beyond it a send is refused
with ``Rejected("queue full")`` — unless the sender asked to wait
(``send(..., wait=True)``): then its message is parked here, in a bounded
FIFO, until the level makes room or the message's timeout passes. The level
decides when to admit; this component only keeps the parked messages in
order and says which are due. Nothing polls: the level admits the moment a
queued message leaves its queue, and a wait's deadline is swept like any
other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from .._deadlines import KeyedDeadlines

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..errors import TierdError
    from ..messaging.message import Message
    from ._correlation import Route

DEFAULT_WAITING_ROOM: Final = 1000
"""Senders that may wait for room at once, per level; more are refused at once."""


class RoomWaiter:
    """A message whose sender waits for room in a full level."""

    __slots__ = ("admitted", "message", "route")

    def __init__(
        self, message: Message, route: Route, admitted: Callable[[TierdError | None], object]
    ) -> None:
        self.message = message
        self.route = route
        self.admitted = admitted
        """Called once, with no lock held: None when admitted, or the refusal."""


class WaitingRoom:
    """Parked messages, oldest first, at most ``limit`` of them."""

    __slots__ = ("limit", "parked")

    def __init__(self, limit: int = DEFAULT_WAITING_ROOM) -> None:
        self.limit = limit
        self.parked: KeyedDeadlines[str, RoomWaiter] = KeyedDeadlines()
        """The parked messages by id, each until its deadline; read only outside this class.

        A level tests ``room.parked.by_key`` after every message it finishes."""

    def __len__(self) -> int:
        return len(self.parked)

    def park(self, waiter: RoomWaiter, until: float) -> bool:
        """Park ``waiter`` until monotonic ``until``; False if the room is full."""
        if len(self.parked) >= self.limit:
            return False
        self.parked.add(waiter.message.id, until, waiter)
        return True

    def next(self) -> RoomWaiter | None:
        """Take the oldest parked message, or None if the room is empty."""
        return self.parked.oldest()

    def expired(self, now: float) -> list[RoomWaiter]:
        """Take every parked message whose wait ended at or before ``now``."""
        return self.parked.expired(now)

    def drain(self) -> list[RoomWaiter]:
        """Take every parked message, oldest first."""
        return self.parked.drain()
