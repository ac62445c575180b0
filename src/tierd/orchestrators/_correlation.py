"""Requests made from a level, waiting for their replies.

A request travels forward hop by hop and each hop keeps where its reply must
go (see `tierd.messaging.link.ReplyRoute`). A request made at a level — by one
of its daemons, or by the runtime for a caller outside every daemon — waits
in the level's `PendingRequests` until its reply, its timeout or an error
settles its waiter. The level holds its lock around every call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, TypeAlias

from .._deadlines import DeadlineHeap

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

    __slots__ = ("deadline", "request", "requester", "waiter")

    def __init__(
        self,
        request: Message,
        waiter: Outcome[Message | TierdError],
        requester: str | None,
        deadline: Any,
    ) -> None:
        self.request = request
        self.waiter = waiter
        """Set once with the reply, or with the error that ends the wait."""
        self.requester = requester
        """The daemon blocked on it, or None for a caller outside every daemon."""
        self.deadline = deadline


class PendingRequests:
    """The requests a level waits on, by id, each with its deadline."""

    __slots__ = ("_by_id", "_deadlines")

    def __init__(self) -> None:
        self._by_id: dict[str, PendingRequest] = {}
        self._deadlines: DeadlineHeap[PendingRequest] = DeadlineHeap()

    def __len__(self) -> int:
        return len(self._by_id)

    def add(
        self,
        request: Message,
        waiter: Outcome[Message | TierdError],
        requester: str | None,
        now: float,
    ) -> None:
        """Wait for the reply to ``request`` until ``now`` plus its timeout (monotonic)."""
        pending = PendingRequest(request, waiter, requester, None)
        pending.deadline = self._deadlines.add(now + request.timeout, pending)
        self._by_id[request.id] = pending

    def resolve(self, request_id: str) -> PendingRequest | None:
        """Stop waiting for ``request_id``: the request, or None if nothing waits for it."""
        pending = self._by_id.pop(request_id, None)
        if pending is not None:
            self._deadlines.cancel(pending.deadline)
        return pending

    def expired(self, now: float) -> list[PendingRequest]:
        """Take every request whose deadline is at or before ``now``."""
        due = list(self._deadlines.expired(now))
        for pending in due:
            del self._by_id[pending.request.id]
        return due

    def drain(self) -> list[PendingRequest]:
        """Take every request still waiting."""
        pending = list(self._by_id.values())
        self._by_id.clear()
        self._deadlines = DeadlineHeap()
        return pending
