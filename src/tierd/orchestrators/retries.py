"""Retries and poison messages: what a level does with a message whose handler raised.

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

`RetryHandling` is mixed into `Level`; its methods run with the level's
lock held. The handler's crash still goes through the restart policy.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any, Final

from ..errors import RemoteError
from ..messaging.link import error_reply
from .supervision import backoff

if TYPE_CHECKING:
    from .._deadlines import DeadlineHeap
    from ..messaging.queue import LevelQueue, QueueEntry
    from .correlation import Route
    from .failures import Due, Later
    from .slot import DaemonSlot
    from .stats import LevelCounters

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


class RetryDue:
    """A message waiting out its retry backoff; due in the level's deadline heap."""

    __slots__ = ("entry", "slot")

    def __init__(self, slot: DaemonSlot, entry: QueueEntry) -> None:
        self.slot = slot
        self.entry = entry


class RetryHandling:
    """Retrying and dead-lettering poison, for one level (mixed into `Level`)."""

    queue: LevelQueue
    deadlines: DeadlineHeap[Due]
    counters: LevelCounters
    retrying: dict[str, RetryDue]
    log: Any

    if TYPE_CHECKING:  # provided by Level and its other mixins

        def _reply(self, route: Route, reply: Any, later: Later) -> None:
            raise NotImplementedError

        def _dead_letter(self, message: Any, reason: str, detail: str) -> None:
            raise NotImplementedError

        def _set_expiry(self, entry: QueueEntry, now: float) -> None:
            raise NotImplementedError

        def _dispatch(self, slot: DaemonSlot) -> None:
            raise NotImplementedError

        def _given_up_error(self, slot: DaemonSlot) -> RemoteError:
            raise NotImplementedError

        def _refuse(
            self, message: Any, route: Route, error: Any, reason: str, later: Later
        ) -> None:
            raise NotImplementedError

    def _retry_or_give_up(
        self, slot: DaemonSlot, entry: QueueEntry, error: BaseException, later: Later
    ) -> bool:
        """Retry a failed message, or dead-letter it as exhausted or poison.

        Returns:
            False if neither applies (no policy, or not a retryable error):
            the caller fails the message as usual.
        """
        message = entry.message
        policy = slot.spec.retry
        retryable = policy is not None and policy.retries(error)
        if not retryable and message.attempts < slot.spec.poison_after:
            return False
        remote = RemoteError(str(slot.address), type(error).__name__, str(error), message.attempts)
        if policy is not None and retryable and message.attempts >= policy.max_attempts:
            self._give_up(entry, remote, "retries_exhausted", later)
        elif message.attempts >= slot.spec.poison_after:
            self._give_up(entry, remote, "poison", later)
        else:
            assert policy is not None
            delay = policy.delay(message.attempts)
            message.status = "pending"
            self.counters.retries += 1
            self.log.info(
                "message_retry_scheduled", message_id=message.id, trace_id=message.trace_id,
                daemon=slot.spec.id, attempts=message.attempts, delay=delay,
            )  # fmt: skip
            due = RetryDue(slot, entry)
            self.retrying[message.id] = due
            entry.deadline = self.deadlines.add(time.monotonic() + delay, due)
        return True

    def _give_up(self, entry: QueueEntry, error: RemoteError, reason: str, later: Later) -> None:
        """Dead-letter a message for good; its requester gets ``error`` (with the attempts)."""
        message = entry.message
        message.status = "error"
        self.counters.completed["error"] += 1
        if message.kind == "request" and entry.reply_route is not None:
            self._reply(entry.reply_route, error_reply(message, error), later)
        self._dead_letter(message, reason, f"{error} (after {message.attempts} attempts)")

    def _requeue_or_poison(self, slot: DaemonSlot, entry: QueueEntry, later: Later) -> bool:
        """Whether a message a crashed daemon held may be queued again; poison is dead-lettered."""
        message = entry.message
        if message.attempts < slot.spec.poison_after:
            return True
        error = RemoteError(
            str(slot.address), "Poison",
            f"the message was delivered {message.attempts} times without being completed",
            message.attempts,
        )  # fmt: skip
        self._give_up(entry, error, "poison", later)
        return False

    def _retry_due(self, due: RetryDue, later: Later) -> None:
        """A retry's backoff is over: queue the message again at its old place."""
        slot, entry = due.slot, due.entry
        if self.retrying.pop(entry.message.id, None) is None:
            return  # cancelled or failed meanwhile
        if slot.given_up:
            self._refuse(
                entry.message, entry.reply_route, self._given_up_error(slot), "daemon_gave_up",
                later,
            )  # fmt: skip
            return
        self.queue.requeue(entry)
        self._set_expiry(entry, time.monotonic())
        self._dispatch(slot)
