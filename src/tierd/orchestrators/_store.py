"""`Store`: where a level keeps what it accepted, so that a restart can deliver it.

A durable level's store is its SQLite `Journal`; every other level has a
`MemoryStore`, which keeps nothing (the queue itself is the only copy) and
answers at once, so the level calls its store on every step without asking
which kind it has. Every call is made under the level's lock and none of
them touches the disk: a journal write is appended to the writer's current
batch, and whoever must wait for the commit waits on the outcome `put`
returns, after the lock is released.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .._outcome import Outcome
    from ..errors import Rejected
    from ..messaging.message import Message


class Store(Protocol):
    """What a level writes as messages come, go and fail."""

    @property
    def durable(self) -> bool:
        """Whether accepted messages outlive the process (then a stop keeps notifications)."""

    def record(self, message: Message, identity: bytes | None) -> Any:
        """Prepare the row of a message about to be accepted; `put` writes it.

        Args:
            message: the message.
            identity: its reply route's `durable_identity`, or None.

        Raises:
            Rejected: the message cannot be stored (its payload is not msgpack-able).
        """

    def put(self, row: Any, attempts: int) -> Outcome[Rejected | None] | None:
        """Write an accepted message's row; the outcome settles once it is durable.

        Returns:
            None if there is nothing to wait for.
        """

    def attempt(self, message_id: str, attempts: int) -> None:
        """A message was handed to a daemon for the ``attempts``-th time."""

    def done(self, message_id: str) -> None:
        """A message was handled or cancelled: it need not be delivered again."""

    def dead_letter(self, message: Message, reason: str, detail: str, at: float) -> None:
        """A message was dead-lettered: keep it as a letter, not as a message to deliver."""

    def forget_dead_letters(self, message_ids: list[str] | None = None) -> None:
        """Remove some dead letters (replayed or purged), or all of them with None."""


class MemoryStore:
    """The store of a level that is not durable: it keeps nothing, and nothing waits."""

    __slots__ = ()

    durable = False

    def record(self, message: Message, identity: bytes | None) -> None:
        """Nothing to prepare."""

    def put(self, row: Any, attempts: int) -> None:
        """Nothing to write or wait for."""

    def attempt(self, message_id: str, attempts: int) -> None:
        """Nothing to record."""

    def done(self, message_id: str) -> None:
        """Nothing to forget."""

    def dead_letter(self, message: Message, reason: str, detail: str, at: float) -> None:
        """The letter lives in the level's box only."""

    def forget_dead_letters(self, message_ids: list[str] | None = None) -> None:
        """Nothing stored to forget."""
