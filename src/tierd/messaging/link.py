"""The link contract: how a message reaches a level, and how its reply comes back.

A `Link` hands a message to one level. A level of this process is a link,
and so is the ZeroMQ peer link to a level served by another runtime; every
caller (the runtime, a daemon, the network's inbound side, another level)
uses the same three words of the contract and never asks which kind of link
it holds.

A request travels forward hop by hop and each hop keeps where its reply must
go (a `ReplyRoute`). A reply never looks up its recipient's address; it
retraces the request's path, so it reaches whoever asked exactly once, across
levels and processes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ..errors import Rejected, TierdError, UnknownRecipient, from_payload, to_payload

if TYPE_CHECKING:
    from .._outcome import Outcome
    from .message import Address, Message


class ReplyRoute(Protocol):
    """Where the reply to one request goes next."""

    @property
    def durable_identity(self) -> bytes | None:
        """What a durable level journals to find this route again after a restart.

        The ZeroMQ identity of a network client, which can reconnect; None for
        a route inside this process, which a restart cannot bring back.
        """

    def deliver_reply(self, reply: Message) -> None:
        """Pass the reply on; called from whichever thread made it, with no lock held."""


class Link(Protocol):
    """A way to hand a message to one level."""

    def submit(
        self, message: Message, reply_route: ReplyRoute | None, *, wait: bool = False
    ) -> Outcome[TierdError | None] | None:
        """Hand ``message`` over; ``reply_route`` is where its reply must go.

        Never blocks on anything but the link's own short lock: whatever takes
        longer (a journal commit, a peer's acknowledgement, room in a full
        queue) is returned as an outcome for the caller to wait on or hang a
        callback on.

        Args:
            message: a request or a notification (a reply travels by routes).
            reply_route: where a request's reply goes; None for no reply.
            wait: if the level's queue is full, park the message until there
                is room (up to its timeout) instead of refusing it.

        Returns:
            None when the message is accepted already; otherwise an outcome
            that settles with None (accepted) or with the refusal.

        Raises:
            Rejected: refused at once, and no reply route will tell the
                sender (a notification; a request's sender gets the refusal
                as its reply).
        """


def settle(accepted: Outcome[TierdError | None] | None, timeout: float | None = None) -> None:
    """Wait for what `Link.submit` returned, and raise the refusal if there was one.

    Args:
        accepted: what ``submit`` returned.
        timeout: seconds to wait; None waits for ever.

    Raises:
        TierdError: the refusal.
        Rejected: no answer within ``timeout``.
    """
    if accepted is None:
        return
    error = accepted.wait(timeout)
    if not accepted.done:
        raise Rejected(f"no confirmation within {timeout:g}s that the message was accepted")
    if error is not None:
        raise error


class Router:
    """Which link serves each level, and which daemons the local levels have."""

    def __init__(self) -> None:
        self._links: dict[int, Link] = {}
        self._local_daemons: dict[int, frozenset[str]] = {}
        self.unknown_recipients: dict[int | None, int] = {}
        """Addresses refused by `check`: by local level for an unknown daemon, None for an
        unserved level (one series for all: level numbers come from the network)."""

    def add_local(self, level: int, link: Link, daemons: frozenset[str]) -> None:
        """Serve ``level`` in this process, with these daemon ids."""
        self._links[level] = link
        self._local_daemons[level] = daemons

    def add_remote(self, level: int, link: Link) -> None:
        """Serve ``level`` through another runtime."""
        self._links[level] = link

    def link_for(self, level: int) -> Link | None:
        """The link that serves ``level``, or None if no one does."""
        return self._links.get(level)

    def check(self, address: Address) -> Link:
        """The link for ``address``, after checking that someone serves it.

        Raises:
            UnknownRecipient: the level is not served, or it is local and has
                no such daemon.
        """
        link = self._links.get(address.level)
        if link is None:
            self._count_unknown(None)
            raise UnknownRecipient(str(address), f"no level {address.level} here")
        daemons = self._local_daemons.get(address.level)
        if daemons is not None and address.daemon not in daemons:
            self._count_unknown(address.level)
            raise UnknownRecipient(
                str(address), f"level {address.level} has no daemon {address.daemon!r}"
            )
        return link

    def _count_unknown(self, level: int | None) -> None:
        counts = self.unknown_recipients
        counts[level] = counts.get(level, 0) + 1


def unwrap_reply(reply: Message) -> Any:
    """Return a reply's payload, or raise the error an error reply carries."""
    if reply.status == "error":
        raise from_payload(reply.payload)
    return reply.payload


def error_reply(request: Message, error: TierdError) -> Message:
    """Make the reply that tells a request's sender about ``error``."""
    return request.reply_to(to_payload(error), status="error")
