"""Correlating replies with requests: routes back, waiters, and error replies.

A request travels forward hop by hop and each hop keeps where its reply must
go (a `ReplyRoute`). A reply never looks up its recipient's address; it
retraces the request's path, so it reaches whoever asked exactly once, across
levels and processes.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Final, Protocol

from ..errors import TierdError, from_payload, to_payload

if TYPE_CHECKING:
    from ..messaging.message import Message


class ReplyRoute(Protocol):
    """Where the reply to one request goes next."""

    def deliver_reply(self, reply: Message) -> None:
        """Pass the reply on; called from the orchestrator thread that made it."""


REPLY_HERE: Final = "reply-here"
"""Reply route of a request whose requester waits at this very level."""

Route = ReplyRoute | str | None
"""Where a reply goes: a route object, `REPLY_HERE`, or None for no reply."""


class ReplyWaiter:
    """A one-shot slot a blocked caller waits on until its reply, or an error, is set.

    A lock held from birth and released by `set` is the cheapest hand-off
    between two threads in CPython.
    """

    __slots__ = ("_lock", "_reply")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._reply: Message | TierdError | None = None

    def set(self, outcome: Message | TierdError) -> bool:
        """Hand over the reply or the error; False if an outcome was set already."""
        if self._reply is not None:
            return False
        self._reply = outcome
        self._lock.release()
        return True

    def wait(self, timeout: float | None = None) -> Message | TierdError | None:
        """Block until the outcome is set; None if ``timeout`` passed first."""
        if self._lock.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
            self._lock.release()
        return self._reply


def unwrap_reply(reply: Message) -> Any:
    """Return a reply's payload, or raise the error an error reply carries."""
    if reply.status == "error":
        raise from_payload(reply.payload)
    return reply.payload


def error_reply(request: Message, error: TierdError) -> Message:
    """Make the reply that tells a request's sender about ``error``."""
    return request.reply_to(to_payload(error), status="error")


class PendingRequest:
    """A request made from this level, waiting for its reply."""

    __slots__ = ("deadline", "request", "requester", "waiter")

    def __init__(
        self, request: Message, waiter: ReplyWaiter, requester: str | None, deadline: Any
    ) -> None:
        self.request = request
        self.waiter = waiter
        self.requester = requester
        """The daemon blocked on it, or None for a caller outside every daemon."""
        self.deadline = deadline
