"""The retry decision, alone, and the messages waiting out their backoff."""

from __future__ import annotations

import pytest

from tierd.messaging.message import Address, Message
from tierd.orchestrators._queue import QueueEntry
from tierd.orchestrators._retries import (
    GiveUp,
    Retry,
    RetryPolicy,
    RetryWaits,
    decide_retry,
    poisoned,
)

POLICY = RetryPolicy(max_attempts=3, initial_delay=1.0, multiplier=2.0, on=("ConnectionError",))


@pytest.mark.parametrize(
    ("policy", "attempts", "error", "decision"),
    [
        (None, 1, ValueError(), None),  # no policy: fails as usual
        (POLICY, 1, ValueError(), None),  # not a retryable type
        (POLICY, 1, ConnectionError(), Retry(1.0)),
        (POLICY, 2, ConnectionRefusedError(), Retry(2.0)),  # a subclass matches
        (POLICY, 3, ConnectionError(), GiveUp("retries_exhausted")),
        (None, 5, ValueError(), GiveUp("poison")),  # poison whatever the policy says
        (RetryPolicy(max_attempts=9, on=("ConnectionError",)), 5, OSError(), GiveUp("poison")),
    ],
)
def test_decide_retry(policy, attempts, error, decision):
    """Retry with the backoff, give up as exhausted or poison, or fail as usual."""
    assert decide_retry(policy, 5, attempts, error) == decision


def test_poison_counts_deliveries():
    """A message handed out poison_after times is poison."""
    assert not poisoned(3, 2)
    assert poisoned(3, 3)


def _entry(n: int) -> QueueEntry:
    message = Message.notification(Address("a", 0), Address("b", 1), n)
    return QueueEntry(message, None, 0.0, n)


def test_retry_waits_hand_back_what_is_due_and_let_go_of_what_is_cancelled():
    """Due entries come back once, at their time; a cancelled one never does."""
    waits = RetryWaits()
    first, second, cancelled = _entry(1), _entry(2), _entry(3)
    waits.schedule("worker", first, 5.0)
    waits.schedule("worker", second, 7.0)
    waits.schedule("worker", cancelled, 6.0)
    assert waits.cancel(cancelled.message.id) is cancelled
    assert waits.cancel(cancelled.message.id) is None
    assert [due.entry for due in waits.expired(6.5)] == [first]
    assert len(waits) == 1
    assert [(due.daemon, due.entry) for due in waits.drain()] == [("worker", second)]
    assert waits.expired(100.0) == []
