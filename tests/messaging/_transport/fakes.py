"""In-memory stand-ins for the transport's unit tests: a clock a test moves, a reply route."""

from __future__ import annotations

from tierd.messaging.message import Address, Message


class Clock:
    """Monotonic time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Replies:
    """A reply route that keeps what it is given."""

    durable_identity = None

    def __init__(self) -> None:
        self.replies: list[Message] = []

    def deliver_reply(self, reply: Message) -> None:
        self.replies.append(reply)


def make_request(recipient: str = "echo@2", timeout: float = 30.0) -> Message:
    """A request from a client to ``recipient``."""
    return Message.request(Address("client", 0), Address.parse(recipient), "hi", timeout=timeout)
