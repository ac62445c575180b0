"""The dead-letter box: bounded, counted by reason, written to its store, purged by id."""

from __future__ import annotations

from typing import Any

from tierd.messaging.message import Address, Message
from tierd.orchestrators._dead_letters import DeadLetters


class RecordingStore:
    """Remembers the dead-letter writes a box makes."""

    durable = True

    def __init__(self) -> None:
        self.letters: list[tuple[str, str]] = []
        self.forgotten: list[str] = []

    def dead_letter(self, message: Message, reason: str, detail: str, at: float) -> None:
        self.letters.append((message.id, reason))

    def forget_dead_letters(self, message_ids: list[str] | None = None) -> None:
        self.forgotten.extend(message_ids or [])

    def __getattr__(self, name: str) -> Any:  # the rest of `Store` is not used by the box
        raise AssertionError(f"DeadLetters called Store.{name}")


def _message(n: int) -> Message:
    return Message.notification(Address("a", 0), Address("b", 1), n)


def test_letters_are_bounded_counted_and_stored():
    """The oldest falls out past the capacity; the counts and the store see every letter."""
    store = RecordingStore()
    box = DeadLetters(capacity=2, store=store, clock=lambda: 42.0)  # type: ignore[arg-type]
    messages = [_message(n) for n in range(3)]
    for message in messages:
        box.add(message, "expired", "too late")
    box.add(_message(9), "poison", "")
    assert [letter.message.payload for letter in box.letters()] == [2, 9]
    assert box.counts == {"expired": 3, "poison": 1}
    assert [reason for _, reason in store.letters] == ["expired"] * 3 + ["poison"]
    assert {letter.at for letter in box.letters()} == {42.0}


def test_purge_by_id_forgets_only_those_in_the_box_and_the_store():
    """Purging names what it removed; restored letters are neither counted nor stored again."""
    store = RecordingStore()
    box = DeadLetters(store=store)  # type: ignore[arg-type]
    kept, purged = _message(1), _message(2)
    box.restore(kept, "expired", "", at=1.0)
    box.add(purged, "handler_error", "boom")
    assert box.purge([purged.id, "unknown"]) == 1
    assert store.forgotten == [purged.id]
    assert [letter.message for letter in box.letters()] == [kept]
    assert box.counts == {"handler_error": 1}
    assert len(store.letters) == 1
