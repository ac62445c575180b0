"""The runner's pure decisions: retry a failed step (the messaging backoff), stop an overdue one."""

from __future__ import annotations

import pytest

import tierd
from tierd.orchestrators._supervision import backoff
from tierd.processes._decisions import (
    HeartbeatLost,
    RetryIn,
    StepTimeout,
    decide_step_retry,
    overdue,
)
from tierd.processes._definition import StepSpec

RETRY = tierd.Retry(max_attempts=3, initial_delay=5, multiplier=2, max_delay=8, on=["OSError"])


def test_a_named_error_or_a_subclass_is_retried_with_the_messaging_backoff():
    """ConnectionError is an OSError; delays 5 then min(10, 8); the formula is backoff's."""
    assert decide_step_retry(RETRY, 1, ConnectionError()) == RetryIn(5.0)
    assert decide_step_retry(RETRY, 2, ConnectionError()) == RetryIn(8.0)
    assert decide_step_retry(RETRY, 2, OSError()).delay == backoff(5, 2, 8, 1)


def test_no_retry_when_attempts_are_spent_the_error_is_other_or_there_is_no_policy():
    """max_attempts counts every attempt."""
    assert decide_step_retry(RETRY, 3, ConnectionError()) is None
    assert decide_step_retry(RETRY, 1, ValueError()) is None
    assert decide_step_retry(None, 1, ConnectionError()) is None


def test_a_step_error_is_retried_only_when_recoverable():
    """Whatever `on` says."""
    assert decide_step_retry(RETRY, 1, tierd.StepError("x", "y")) is None
    assert decide_step_retry(RETRY, 1, tierd.StepError("x", "y", recoverable=True)) == RetryIn(5.0)


def test_a_remote_error_is_matched_by_the_daemons_exception_type():
    """A request step's daemon raised RateLimited: on = ["RateLimited"] retries it."""
    limited = tierd.Retry(on=["RateLimited"], initial_delay=1)
    error = tierd.RemoteError("translator@2", "RateLimited", "slow down")
    assert decide_step_retry(limited, 1, error) == RetryIn(1.0)
    assert decide_step_retry(limited, 1, tierd.RemoteError("a@1", "KeyError", "k")) is None


def test_timeouts_are_timeout_errors_for_the_retry():
    """A retry on TimeoutError retries a step over its timeout or its heartbeat."""
    timeouts = tierd.Retry(on=["TimeoutError"])
    assert decide_step_retry(timeouts, 1, StepTimeout()) is not None
    assert decide_step_retry(timeouts, 1, HeartbeatLost()) is not None


def test_overdue_says_timeout_heartbeat_or_stuck():
    """Timeout first, then heartbeat, then stuck_after."""
    spec = StepSpec("s", lambda *a: None, timeout=10, heartbeat=3)
    assert overdue(spec, 0, 0, 2.9, 600) is None
    assert overdue(spec, 0, 0, 3, 600) == "heartbeat"
    assert overdue(spec, 0, 9, 10, 600) == "timeout"
    free = StepSpec("s", lambda *a: None)
    assert overdue(free, 0, 0, 599, 600) is None
    assert overdue(free, 0, 0, 600, 600) == "stuck"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be >= 1"),
        ({"multiplier": 0.5}, "multiplier >= 1"),
        ({"on": []}, "must name at least one exception"),
    ],
)
def test_a_bad_retry_is_refused(options, message):
    """Checked when it is made."""
    with pytest.raises(ValueError, match=message):
        tierd.Retry(**options)
