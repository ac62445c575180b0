"""Dead letters: messages that could not be delivered, kept per level, bounded.

`DeadLetters` is a level's box of dead letters with its counts by reason; it
writes each letter to the level's store (a durable level keeps them across
restarts) and forgets them there when they are replayed or purged.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from ..messaging.message import Message
    from ._store import Store

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


class DeadLetters:
    """The newest `capacity` dead letters of one level, older ones falling out, and counts.

    Args:
        capacity: how many letters are kept.
        store: where letters are kept across restarts (a no-op for a level in memory).
        clock: epoch seconds, for each letter's time.
    """

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        store: Store | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._letters: collections.deque[DeadLetter] = collections.deque(maxlen=capacity)
        self._store = store
        self._clock = clock
        self.counts: dict[str, int] = {}
        """Messages dead-lettered since the level started, by reason."""

    def __len__(self) -> int:
        return len(self._letters)

    def add(self, message: Message, reason: str, detail: str = "") -> DeadLetter:
        """Dead-letter ``message`` now: keep it (the oldest falls out if full), count, store it."""
        letter = DeadLetter(message, reason, detail, self._clock())
        self._letters.append(letter)
        self.counts[reason] = self.counts.get(reason, 0) + 1
        if self._store is not None:
            self._store.dead_letter(message, reason, detail, letter.at)
        return letter

    def restore(self, message: Message, reason: str, detail: str, at: float) -> None:
        """Keep a letter a previous run stored, as it was: not counted or stored again."""
        self._letters.append(DeadLetter(message, reason, detail, at))

    def put_back(self, letter: DeadLetter, detail: str) -> None:
        """Keep a letter again whose replay was refused, with why in its detail."""
        self._letters.append(dataclasses.replace(letter, detail=detail))

    def purge(self, ids: Collection[str] | None = None) -> int:
        """Forget the letters whose message id is in ``ids`` (all if None); how many."""
        taken = self.take(ids)
        self.forget_stored([letter.message.id for letter in taken])
        return len(taken)

    def forget_stored(self, ids: list[str]) -> None:
        """Remove letters from the store: replayed or purged ones."""
        if self._store is not None and ids:
            self._store.forget_dead_letters(ids)

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
