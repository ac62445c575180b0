"""Dead letters: messages that could not be delivered, kept per level, bounded."""

from __future__ import annotations

import collections
import dataclasses
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Collection

    from ..messaging.message import Message

DEFAULT_CAPACITY = 10_000


@dataclasses.dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message that could not be delivered, and why."""

    message: Message
    """The message as it was when it was given up on."""
    reason: str
    """``expired``, ``handler_error``, ``retries_exhausted``, ``poison``, ``daemon_gave_up``,
    ``unknown_recipient``, ``stopped``."""
    detail: str
    """A sentence for a person: the error text, or what expired."""
    at: float
    """Epoch seconds when it was dead-lettered."""

    def to_dict(self) -> dict[str, Any]:
        """The letter as msgpack- and JSON-able data, for clients and ``tierd dead-letters``."""
        message = self.message
        return {
            "id": message.id,
            "reason": self.reason,
            "detail": self.detail,
            "at": self.at,
            "kind": message.kind,
            "sender": str(message.sender),
            "recipient": str(message.recipient),
            "priority": message.priority,
            "attempts": message.attempts,
            "trace_id": message.trace_id,
            "created_at": message.created_at,
            "payload": message.payload,
        }


class DeadLetterBox:
    """The newest `capacity` dead letters of one level; older ones fall out."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._letters: collections.deque[DeadLetter] = collections.deque(maxlen=capacity)

    def __len__(self) -> int:
        return len(self._letters)

    def add(
        self, message: Message, reason: str, detail: str = "", at: float | None = None
    ) -> DeadLetter:
        """Keep ``message`` as a dead letter, dropping the oldest one if full.

        ``at`` (epoch seconds) defaults to now; a durable level restores older ones.
        """
        letter = DeadLetter(message, reason, detail, time.time() if at is None else at)
        self._letters.append(letter)
        return letter

    def letters(self) -> list[DeadLetter]:
        """Every dead letter kept, oldest first."""
        return list(self._letters)

    def take(self, ids: Collection[str] | None = None) -> list[DeadLetter]:
        """Remove and return the letters whose message id is in ``ids`` (all if None)."""
        if ids is None:
            return self.take_all()
        wanted = set(ids)
        taken = [letter for letter in self._letters if letter.message.id in wanted]
        if taken:
            kept = [letter for letter in self._letters if letter.message.id not in wanted]
            self._letters.clear()
            self._letters.extend(kept)
        return taken

    def take_all(self) -> list[DeadLetter]:
        """Remove and return every dead letter, oldest first."""
        letters = list(self._letters)
        self._letters.clear()
        return letters
