"""Routing: which link reaches a level, and how a link hands a message over.

A `Link` is the seam between levels. `LocalLink` reaches an orchestrator in
this process; the ZeroMQ bridge provides a link for levels of another runtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ..errors import UnknownRecipient
from .commands import ReplyArrived, Submit

if TYPE_CHECKING:
    import pykka

    from ..messaging.message import Address, Message
    from .correlation import ReplyRoute


class Link(Protocol):
    """A way to hand a message to the orchestrator of one level."""

    def submit(self, message: Message, reply_route: ReplyRoute | None) -> None:
        """Hand ``message`` over; ``reply_route`` is where its reply must go."""


class LocalLink:
    """An orchestrator in this process: a link to it, and a route back to it."""

    __slots__ = ("actor_ref", "level")

    def __init__(self, level: int, actor_ref: pykka.ActorRef[Any]) -> None:
        self.level = level
        self.actor_ref = actor_ref

    def submit(self, message: Message, reply_route: ReplyRoute | None) -> None:
        """Tell the orchestrator to take ``message``."""
        self.actor_ref.tell(Submit(message, reply_route))

    def deliver_reply(self, reply: Message) -> None:
        """Tell the orchestrator that a reply it waits for came back."""
        self.actor_ref.tell(ReplyArrived(reply))


class Router:
    """Which link serves each level, and which daemons the local levels have."""

    def __init__(self) -> None:
        self._links: dict[int, Link] = {}
        self._local_daemons: dict[int, frozenset[str]] = {}

    def add_local(self, link: LocalLink, daemons: frozenset[str]) -> None:
        """Serve ``link.level`` in this process, with these daemon ids."""
        self._links[link.level] = link
        self._local_daemons[link.level] = daemons

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

    @property
    def levels(self) -> list[int]:
        """Every level served, local or remote, in order."""
        return sorted(self._links)
