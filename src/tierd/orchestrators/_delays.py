"""`Delays`: the messages of a level that wait out their ``not_before``.

A delayed message is accepted (and, on a durable level, journaled) when it
arrives, but it is not queued: it waits here, by id, with the monotonic time
its delay ends. The level's sweep takes the ones that are due and queues them
like new arrivals; cancel finds one by id. Nothing here reads a clock or
queues anything: the level does both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._deadlines import KeyedDeadlines

if TYPE_CHECKING:
    from ..messaging.message import Message


class Delayed:
    """A message waiting out its delay, and where its reply (if any) goes."""

    __slots__ = ("message", "reply_route")

    def __init__(self, message: Message, reply_route: Any) -> None:
        self.message = message
        self.reply_route = reply_route


class Delays:
    """The delayed messages of one level, by id, each with the time its delay ends."""

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: KeyedDeadlines[str, Delayed] = KeyedDeadlines()

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, message: Message, reply_route: Any, until: float) -> None:
        """Keep ``message`` until monotonic ``until``, then hand it back through `due`."""
        self._held.add(message.id, until, Delayed(message, reply_route))

    def cancel(self, message_id: str) -> Delayed | None:
        """Take a delayed message out before it is due; None if it is not held here."""
        return self._held.pop(message_id)

    def due(self, now: float) -> list[Delayed]:
        """Take every message whose delay is over at monotonic ``now``, earliest first."""
        return self._held.expired(now)

    def drain(self) -> list[Delayed]:
        """Take every delayed message."""
        return self._held.drain()
