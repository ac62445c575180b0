"""Requests made from a level, waiting for their replies.

A request travels forward hop by hop and each hop keeps where its reply must
go (see `tierd.messaging.link.ReplyRoute`). A request made at a level — by one
of its daemons, or by the runtime for a caller outside every daemon — waits
in the level's `PendingRequests` until its reply, its timeout or an error
settles its waiter. The level holds its lock around every call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, TypeAlias

from .._deadlines import KeyedDeadlines

if TYPE_CHECKING:
    from .._outcome import Outcome
    from ..errors import TierdError
    from ..messaging.link import ReplyRoute
    from ..messaging.message import Message

REPLY_HERE: Final = "reply-here"
"""Reply route of a request whose requester waits at this very level."""

Route: TypeAlias = "ReplyRoute | str | None"
"""Where a reply goes: a route object, `REPLY_HERE`, or None for no reply."""


class PendingRequest:
    """A request made from a level, waiting for its reply."""

    __slots__ = ("request", "requester", "waiter")

    def __init__(
        self, request: Message, waiter: Outcome[Message | TierdError], requester: str | None
    ) -> None:
        self.request = request
        self.waiter = waiter
        """Set once with the reply, or with the error that ends the wait."""
        self.requester = requester
        """The daemon blocked on it, or None for a caller outside every daemon."""


class PendingRequests:
    """The requests a level waits on, by id, each with its deadline."""

    __slots__ = ("_waiting",)

    def __init__(self) -> None:
        self._waiting: KeyedDeadlines[str, PendingRequest] = KeyedDeadlines()

    def __len__(self) -> int:
        return len(self._waiting)

    def add(
        self,
        request: Message,
        waiter: Outcome[Message | TierdError],
        requester: str | None,
        now: float,
    ) -> None:
        """Wait for the reply to ``request`` until ``now`` plus its timeout (monotonic)."""
        pending = PendingRequest(request, waiter, requester)
        self._waiting.add(request.id, now + request.timeout, pending)

    def resolve(self, request_id: str) -> PendingRequest | None:
        """Stop waiting for ``request_id``: the request, or None if nothing waits for it."""
        return self._waiting.pop(request_id)

    def expired(self, now: float) -> list[PendingRequest]:
        """Take every request whose deadline is at or before ``now``."""
        return self._waiting.expired(now)

    def drain(self) -> list[PendingRequest]:
        """Take every request still waiting."""
        return self._waiting.drain()
