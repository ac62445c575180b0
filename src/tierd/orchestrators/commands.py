"""What is told to an orchestrator actor; one slotted class per command.

Daemons and links tell these; only the orchestrator's thread acts on them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..messaging.message import Message
    from .correlation import ReplyRoute, ReplyWaiter


class Submit:
    """A message enters the level: queue it, or forward it to its level."""

    __slots__ = ("message", "reply_route", "waiter")

    def __init__(
        self,
        message: Message,
        reply_route: ReplyRoute | None = None,
        waiter: ReplyWaiter | None = None,
    ) -> None:
        self.message = message
        self.reply_route = reply_route
        """Where the reply goes, for a request that came from elsewhere."""
        self.waiter = waiter
        """Who waits here for the reply, for a request made outside every daemon."""


class Handled:
    """A daemon finished a message: with a result, or with the error it raised."""

    __slots__ = ("daemon", "duration", "error", "generation", "message_id", "result")

    def __init__(
        self,
        daemon: str,
        generation: int,
        message_id: str,
        result: Any,
        error: BaseException | None,
        duration: float,
    ) -> None:
        self.daemon = daemon
        self.generation = generation
        self.message_id = message_id
        self.result = result
        self.error = error
        self.duration = duration


class Requesting:
    """A daemon, inside its handler, made a request and blocks until the reply."""

    __slots__ = ("daemon", "generation", "request", "waiter")

    def __init__(self, daemon: str, generation: int, request: Message, waiter: ReplyWaiter) -> None:
        self.daemon = daemon
        self.generation = generation
        self.request = request
        self.waiter = waiter


class ReplyArrived:
    """A reply to a request made from this level came back."""

    __slots__ = ("reply",)

    def __init__(self, reply: Message) -> None:
        self.reply = reply


class StartFailed:
    """A daemon's ``on_start`` raised."""

    __slots__ = ("daemon", "error", "generation")

    def __init__(self, daemon: str, generation: int, error: BaseException) -> None:
        self.daemon = daemon
        self.generation = generation
        self.error = error


class Sweep:
    """Time to expire deadlines and run due restarts."""

    __slots__ = ()


class TakeStatistics:
    """Ask for a `LevelStatistics` snapshot."""

    __slots__ = ()


class ListDeadLetters:
    """Ask for the level's dead letters, oldest first."""

    __slots__ = ()


class SetPaused:
    """Pause or resume one daemon."""

    __slots__ = ("daemon", "paused")

    def __init__(self, daemon: str, paused: bool) -> None:  # noqa: FBT001
        self.daemon = daemon
        self.paused = paused


class Cancel:
    """Cancel a queued message, or discard the reply of one in progress."""

    __slots__ = ("message_id",)

    def __init__(self, message_id: str) -> None:
        self.message_id = message_id


class Drain:
    """Stop taking new messages; answer how many are still queued or in flight."""

    __slots__ = ()


class FailQueued:
    """Fail everything still queued or waiting, because the runtime stops."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason
