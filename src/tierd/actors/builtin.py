"""Daemons shipped with tierd, for the default topology, examples and tests."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..messaging.message import Address
from .daemon import Daemon

if TYPE_CHECKING:
    from ..messaging.message import Message

__all__ = ["Crasher", "Echo", "Recorder", "Relay", "Sleeper"]


class Echo(Daemon):
    """Replies with the request's payload unchanged."""

    def handle(self, message: Message) -> Any:
        """Reply with the payload."""
        return message.payload


class Sleeper(Daemon):
    """Payload ``{"seconds": s}``: stays WORKING for s seconds, then replies ``{"slept": s}``."""

    def handle(self, message: Message) -> Any:
        """Sleep, then say how long."""
        payload = message.payload
        if not isinstance(payload, dict) or not isinstance(payload.get("seconds"), int | float):
            raise ValueError('Sleeper wants a payload {"seconds": <number>}')
        seconds = payload["seconds"]
        time.sleep(max(seconds, 0))
        return {"slept": seconds}


class Crasher(Daemon):
    """Raises `RuntimeError` for every message."""

    def handle(self, message: Message) -> Any:
        """Raise, always."""
        raise RuntimeError(f"Crasher crashes on purpose (message {message.id})")


class Relay(Daemon):
    """Requests ``to`` with the payload it got and replies with that reply.

    Args:
        to: the address to relay to, e.g. ``"echo@2"``.
    """

    address_options = ("to",)
    """Options that hold an address: ``tierd check`` refuses one no level serves."""

    def __init__(self, to: str) -> None:
        self.to = Address.parse(to)

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        """Check that ``to`` is an address."""
        super().check_options(options)
        try:
            Address.parse(options["to"])
        except ValueError as error:
            raise ValueError(f"option 'to': {error}") from None

    def handle(self, message: Message) -> Any:
        """Request ``to`` with the payload and reply with its reply.

        A downstream error (its `RemoteError`, a `RequestTimeout`, a
        `Deadlock`) passes through to the requester as it is, with this
        relay in its ``via``; the request inherits the time the requester
        has left, so a slow downstream never keeps the relay past it.
        """
        return self.request(self.to, message.payload, priority=message.priority)


class Recorder(Daemon):
    """Records notifications; answers ``{"op": "dump"}`` and ``{"op": "count"}`` requests.

    Args:
        delay: seconds to spend on each notification (default 0).
    """

    def __init__(self, delay: float = 0.0) -> None:
        if not isinstance(delay, int | float) or delay < 0:
            raise ValueError(f"option 'delay' must be a number >= 0, not {delay!r}")
        self.delay = float(delay)
        self.recorded: list[Any] = []

    def handle(self, message: Message) -> Any:
        """Record a notification, or answer a dump or count request."""
        if message.kind != "request":
            if self.delay:
                time.sleep(self.delay)
            self.recorded.append(message.payload)
            return None
        op = message.payload.get("op") if isinstance(message.payload, dict) else None
        if op == "dump":
            return list(self.recorded)
        if op == "count":
            return len(self.recorded)
        raise ValueError(
            'Recorder answers requests {"op": "dump"} or {"op": "count"}, '
            f"not {message.payload!r}"
        )
