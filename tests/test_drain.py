"""Graceful stop: WORKING daemons finish, queued messages fail with a clear error."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import tierd
from tests.daemons import gate
from tests.topology import daemon, level
from tierd.testing import runtime_from_dict, wait_until


def _in_thread(target: Any, *args: Any, **kwargs: Any) -> tuple[threading.Thread, dict[str, Any]]:
    """Run ``target`` in a thread; the dict gets its ``result`` or ``error``."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = target(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - handed to the test to assert on
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _wait_refusing(rt: tierd.Runtime, level_number: int) -> None:
    """Wait until ``level_number`` refuses new messages (its probe is dead-lettered 'stopped')."""
    index = rt.config.local_levels.index(level_number)
    target = f"{rt.config.levels[index].daemons[0].id}@{level_number}"

    def refused() -> bool:
        try:
            rt.send(target, "probe")
        except tierd.TierdError:
            return True
        return rt.statistics()[index].dead_letters.get("stopped", 0) > 0

    wait_until(refused, timeout=5, interval=0.01)


def test_working_sleeper_finishes_during_stop_and_its_requester_gets_the_reply():
    """stop() lets a WORKING Sleeper finish within the grace period; its requester gets it."""
    rt = runtime_from_dict({"levels": [level(1, daemon("sleeper", "Sleeper"))]})
    rt.start()
    requester, outcome = _in_thread(rt.request, "sleeper@1", {"seconds": 0.3}, timeout=5)
    wait_until(lambda: rt.statistics()[0].daemons[0].state == "WORKING")
    stopper, _ = _in_thread(rt.stop, grace_period=5)
    requester.join(5)
    stopper.join(10)
    assert outcome == {"result": {"slept": 0.3}}
    assert not stopper.is_alive()


@pytest.mark.usefixtures("gates")
def test_what_is_left_when_the_grace_period_ends_fails_with_a_clear_error():
    """Requests still queued or in flight when the grace period ends fail with Rejected."""
    rt = runtime_from_dict({"levels": [level(1, daemon("gate", "Gate", options={"name": "g"}))]})
    rt.start()
    entered, release = gate("g")
    first, first_outcome = _in_thread(rt.request, "gate@1", "first", timeout=10)
    assert entered.wait(5)
    second, second_outcome = _in_thread(rt.request, "gate@1", "second", timeout=10)
    wait_until(lambda: rt.statistics()[0].queued == 1)
    stopper, _ = _in_thread(rt.stop, grace_period=0.2)
    second.join(5)
    first.join(5)
    release.set()
    stopper.join(10)
    for outcome in (first_outcome, second_outcome):
        assert isinstance(outcome["error"], tierd.Rejected)
        assert "runtime stopped before the message was handled" in str(outcome["error"])
    assert not stopper.is_alive()


@pytest.mark.usefixtures("gates")
def test_daemon_request_made_while_stopping_is_still_served():
    """A WORKING daemon's own request made during the drain is accepted, so it can finish."""
    rt = runtime_from_dict(
        {
            "levels": [
                level(1, daemon("relay", "GatedRelay", options={"name": "r", "to": "echo@2"})),
                level(2, daemon("echo", "Echo")),
            ]
        }
    )
    rt.start()
    entered, release = gate("r")
    requester, outcome = _in_thread(rt.request, "relay@1", {"x": 1}, timeout=10)
    assert entered.wait(5)
    stopper, _ = _in_thread(rt.stop, grace_period=5)
    _wait_refusing(rt, 2)
    release.set()
    requester.join(10)
    stopper.join(10)
    assert outcome == {"result": {"x": 1}}
