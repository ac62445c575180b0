"""Restart decisions on a fake clock: backoff, the window, giving up, due restarts."""

from __future__ import annotations

from tierd.orchestrators._supervision import (
    Restart,
    RestartPolicy,
    RestartTracker,
    Stop,
    Supervisor,
    backoff,
)


def test_restart_delays_grow_and_cap():
    """Delays grow by the multiplier up to max_delay, then the tracker gives up."""
    tracker = RestartTracker(
        RestartPolicy(initial_delay=0.1, multiplier=2, max_delay=0.3, max_restarts=4, window=60)
    )
    delays = [tracker.next_delay(float(t)) for t in range(5)]
    assert delays == [0.1, 0.2, 0.3, 0.3, None]


def test_restarts_outside_the_window_are_forgotten():
    """Crashes older than the window no longer count towards giving up."""
    tracker = RestartTracker(RestartPolicy(initial_delay=1, max_restarts=2, window=10))
    assert tracker.next_delay(0.0) == 1
    assert tracker.next_delay(1.0) == 2
    assert tracker.next_delay(2.0) is None
    assert tracker.next_delay(30.0) == 1


def test_backoff_is_exponential_and_capped():
    """The one formula restarts and retries share."""
    assert [backoff(0.5, 2.0, 3.0, step) for step in range(4)] == [0.5, 1.0, 2.0, 3.0]


def test_the_supervisor_reports_a_restart_as_due_once_its_delay_has_passed():
    """A crash schedules the restart; `due` names the daemon at that time, once."""
    supervisor = Supervisor({"a": RestartPolicy(initial_delay=0.5), "b": RestartPolicy()})
    assert supervisor.crashed("a", now=10.0) == Restart(0.5)
    assert supervisor.due(10.49) == []
    assert supervisor.due(10.5) == ["a"]
    assert supervisor.due(99.0) == []
    assert supervisor.restarts("a") == 1
    assert supervisor.restarts("b") == 0


def test_the_supervisor_gives_up_and_schedules_nothing():
    """Past max_restarts in the window, `crashed` says Stop and no restart becomes due."""
    supervisor = Supervisor({"a": RestartPolicy(initial_delay=0.1, max_restarts=1)})
    assert supervisor.crashed("a", now=0.0) == Restart(0.1)
    assert supervisor.due(1.0) == ["a"]
    assert supervisor.crashed("a", now=2.0) == Stop("it crashed more than 1 times in 60s")
    assert supervisor.due(100.0) == []
    assert supervisor.policy("a").max_restarts == 1
