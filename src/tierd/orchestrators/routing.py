"""Routing: which link reaches a level.

A `Link` is the seam between levels. A `Level` of this process is itself a
link (its ``submit`` takes the message in the caller's thread); the ZeroMQ
bridge provides links for levels of another runtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..errors import UnknownRecipient

if TYPE_CHECKING:
    from ..messaging.message import Address, Message
    from .correlation import ReplyRoute


class Link(Protocol):
    """A way to hand a message to one level."""

    def submit(self, message: Message, reply_route: ReplyRoute | None) -> None:
        """Hand ``message`` over; ``reply_route`` is where its reply must go."""


class Router:
    """Which link serves each level, and which daemons the local levels have."""

    def __init__(self) -> None:
        self._links: dict[int, Link] = {}
        self._local_daemons: dict[int, frozenset[str]] = {}

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
            raise UnknownRecipient(str(address), f"no level {address.level} here")
        daemons = self._local_daemons.get(address.level)
        if daemons is not None and address.daemon not in daemons:
            raise UnknownRecipient(
                str(address), f"level {address.level} has no daemon {address.daemon!r}"
            )
        return link
