"""The runner's policies, each a pure decision: retry a failed step, or stop an overdue one.

Nothing here keeps state or calls back into the runner; the runner asks, under
its lock, and acts on the answer (as the level does with `decide_retry`).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Literal

from ..errors import RemoteError, StepError

if TYPE_CHECKING:
    from ._definition import Retry, StepSpec

Overdue = Literal["timeout", "heartbeat", "stuck"]


class StepTimeout(TimeoutError):
    """An attempt ran past its step's ``timeout`` (retried by ``on = ["TimeoutError"]``)."""


class HeartbeatLost(TimeoutError):
    """An attempt went past its step's ``heartbeat`` without ``ctx.progress`` or ``heartbeat``."""


class Interrupted(BaseException):
    """Raised inside a step at ``ctx.progress``/``heartbeat`` to end an attempt that must stop.

    A `BaseException`, so that a step's ``except Exception`` does not swallow it.

    Attributes:
        reason: ``pause``, ``timeout``, ``heartbeat``, ``stuck``, ``abandoned`` or ``stopping``.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"step attempt interrupted: {reason}")


@dataclasses.dataclass(frozen=True, slots=True)
class RetryIn:
    """Start another attempt of the step after ``delay`` seconds."""

    delay: float


def decide_step_retry(retry: Retry | None, failures: int, error: BaseException) -> RetryIn | None:
    """Whether a step whose attempt just failed with ``error`` runs again, and when.

    Args:
        retry: the step's policy; None never retries.
        failures: the step's failed attempts so far, this one included.
        error: what the attempt raised (a `StepTimeout` or `HeartbeatLost` when overdue).

    Returns:
        `RetryIn` with the backoff, or None: the step fails. A `tierd.StepError` is
        retried only when ``recoverable`` (whatever ``on`` says); any other error when
        its class (or a base along its MRO) is named in ``on``; a `tierd.RemoteError`
        also when the daemon's exception type is.
    """
    if retry is None or failures >= retry.max_attempts:
        return None
    policy = retry.policy
    # A daemon's exception comes back as RemoteError; its own type name counts too.
    remote = isinstance(error, RemoteError) and error.error_type in policy.on
    if isinstance(error, StepError):
        if not error.recoverable:
            return None
    elif not (policy.retries(error) or remote):
        return None
    return RetryIn(policy.delay(failures))


def overdue(
    spec: StepSpec, started: float, last_beat: float, now: float, stuck_after: float
) -> Overdue | None:
    """Whether an attempt must stop: past its timeout, its heartbeat, or ``stuck_after``.

    Args:
        spec: the step.
        started: when the attempt started (monotonic seconds).
        last_beat: its last progress or heartbeat (monotonic seconds; its start if none).
        now: the monotonic time.
        stuck_after: seconds without a beat after which any step is taken as stuck.
    """
    if spec.timeout is not None and now - started >= spec.timeout:
        return "timeout"
    if spec.heartbeat is not None and now - last_beat >= spec.heartbeat:
        return "heartbeat"
    if now - last_beat >= stuck_after:
        return "stuck"
    return None
