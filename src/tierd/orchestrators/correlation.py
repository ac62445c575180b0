"""Requests made from a level, waiting for their replies.

A request travels forward hop by hop and each hop keeps where its reply must
go (see `tierd.messaging.link.ReplyRoute`). A request made at this level —
by one of its daemons, or by the runtime for a caller outside every daemon —
waits here as a `PendingRequest` until its reply, its timeout or an error
settles its outcome.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, TypeAlias

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
    """A request made from this level, waiting for its reply."""

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
        self.requester = requester
        """The daemon blocked on it, or None for a caller outside every daemon."""
        self.deadline = deadline
