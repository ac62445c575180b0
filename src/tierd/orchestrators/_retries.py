"""Retries and poison messages: what becomes of a message whose handler raised.

A daemon may have a `RetryPolicy`: a handler that raises one of the policy's
exception types gets the message again after a backoff, at the same
priority and with the same id, until ``max_attempts`` deliveries have
failed; then the message is dead-lettered (``retries_exhausted``) and its
requester gets `RemoteError` carrying the attempt count. Any other exception
fails the message at once, as without a policy.

Independently, a message delivered ``poison_after`` times without being
completed is *poison*: it is dead-lettered (``poison``) instead of being
delivered again, whatever the retry policy says, so that one message can
never keep a daemon in a crash loop.

`decide_retry` makes that decision and nothing else; `RetryWaits` keeps the
messages waiting out their backoff. The level acts on both.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Final

from .._deadlines import KeyedDeadlines
from ._supervision import backoff

if TYPE_CHECKING:
    from ._queue import QueueEntry

DEFAULT_POISON_AFTER: Final = 3
"""Deliveries without completion after which a message is poison."""


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how often a failed message is delivered again."""

    max_attempts: int = 3
    """Deliveries in all, the first one included; 1 means no retry."""
    initial_delay: float = 0.5
    """Seconds before the second delivery."""
    multiplier: float = 2.0
    """Each further retry waits this many times longer."""
    max_delay: float = 30.0
    """The longest wait before a retry, in seconds."""
    on: tuple[str, ...] = ()
    """Exception class names that are retried (a subclass of one matches); others fail at once."""

    def retries(self, error: BaseException) -> bool:
        """Whether ``error`` is one of the retryable types (by class name, along its MRO)."""
        return any(cls.__name__ in self.on for cls in type(error).__mro__)

    def delay(self, attempts: int) -> float:
        """Seconds to wait before the delivery after ``attempts`` failed ones."""
        return backoff(self.initial_delay, self.multiplier, self.max_delay, max(attempts - 1, 0))


@dataclasses.dataclass(frozen=True, slots=True)
class Retry:
    """Deliver the message again after ``delay`` seconds."""

    delay: float


@dataclasses.dataclass(frozen=True, slots=True)
class GiveUp:
    """Dead-letter the message for good, for ``reason``: ``retries_exhausted`` or ``poison``."""

    reason: str


def decide_retry(
    policy: RetryPolicy | None, poison_after: int, attempts: int, error: BaseException
) -> Retry | GiveUp | None:
    """What to do with a message whose handler raised ``error`` on delivery ``attempts``.

    Returns:
        `Retry` with the backoff, `GiveUp` with the dead-letter reason, or
        None when neither applies (no policy, or not a retryable error, and
        not poison yet): the message fails as usual.
    """
    retryable = policy is not None and policy.retries(error)
    if not retryable and attempts < poison_after:
        return None
    if policy is not None and retryable and attempts >= policy.max_attempts:
        return GiveUp("retries_exhausted")
    if attempts >= poison_after:
        return GiveUp("poison")
    assert policy is not None  # retryable
    return Retry(policy.delay(attempts))


def poisoned(poison_after: int, attempts: int) -> bool:
    """Whether a message handed out ``attempts`` times must not be handed out again."""
    return attempts >= poison_after


class RetryDue:
    """A message waiting out its retry backoff, for one daemon."""

    __slots__ = ("daemon", "entry")

    def __init__(self, daemon: str, entry: QueueEntry) -> None:
        self.daemon = daemon
        self.entry = entry


class RetryWaits:
    """Messages waiting out a retry backoff, by id, each with the time it is due."""

    __slots__ = ("_waiting",)

    def __init__(self) -> None:
        self._waiting: KeyedDeadlines[str, RetryDue] = KeyedDeadlines()

    def __len__(self) -> int:
        return len(self._waiting)

    def schedule(self, daemon: str, entry: QueueEntry, at: float) -> None:
        """Keep ``entry`` until monotonic ``at``, then hand it back through `expired`."""
        self._waiting.add(entry.message.id, at, RetryDue(daemon, entry))

    def cancel(self, message_id: str) -> QueueEntry | None:
        """Take a waiting message out before it is due; None if it is not waiting."""
        due = self._waiting.pop(message_id)
        return due.entry if due is not None else None

    def expired(self, now: float) -> list[RetryDue]:
        """Take every message whose backoff is over at ``now``."""
        return self._waiting.expired(now)

    def drain(self) -> list[RetryDue]:
        """Take every waiting message."""
        return self._waiting.drain()
