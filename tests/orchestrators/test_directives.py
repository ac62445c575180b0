"""Supervision directives through a real runtime.

Resume keeps a daemon's state, tierd's own errors never restart it, stop
gives it up, and `restart` brings it back.
"""

from __future__ import annotations

import pytest

import tierd
from tests.topology import daemon, level
from tierd.testing import wait_until


def _daemon(rt: tierd.Runtime, address: str) -> tierd.orchestrators._stats.DaemonStatistics:  # type: ignore[name-defined]
    name, number = address.split("@")
    stats = next(s for s in rt.statistics() if s.level == int(number))
    return next(d for d in stats.daemons if d.daemon == name)


def test_a_business_error_keeps_the_daemons_state(make_runtime):
    """A Recorder that refuses a bogus request still holds what it recorded before."""
    rt = make_runtime({"levels": [level(1, daemon("recorder", "Recorder"))]})
    rt.send("recorder@1", "a")
    rt.send("recorder@1", "b")
    with pytest.raises(tierd.RemoteError, match="ValueError"):
        rt.request("recorder@1", {"op": "bogus"}, timeout=5)
    assert rt.request("recorder@1", {"op": "dump"}, timeout=5) == ["a", "b"]
    recorder = _daemon(rt, "recorder@1")
    assert (recorder.errors, recorder.restarts, recorder.state) == (1, 0, "IDLE")


def test_a_cycle_gives_the_caller_deadlock_every_time_and_both_daemons_stay_idle(make_runtime):
    """a@1 asks b@1, which asks a@1: the caller gets tierd.Deadlock 100 times in a row."""
    rt = make_runtime(
        {
            "levels": [
                level(
                    1,
                    daemon("a", "Relay", options={"to": "b@1"}),
                    daemon("b", "Relay", options={"to": "a@1"}),
                )
            ]
        }
    )
    for _ in range(100):
        with pytest.raises(tierd.Deadlock) as caught:
            rt.request("a@1", "ping", timeout=5)
        assert caught.value.via == ("b@1", "a@1")
    for address in ("a@1", "b@1"):
        stats = _daemon(rt, address)
        assert (stats.state, stats.restarts, stats.given_up) == ("IDLE", 0, False)


def test_a_relay_over_a_slow_daemon_keeps_serving_after_a_hundred_timeouts(make_runtime):
    """Each downstream RequestTimeout reaches the caller as RequestTimeout; the relay lives on."""
    rt = make_runtime(
        {
            "levels": [
                level(1, daemon("relay", "Relay", options={"to": "sleeper@2"})),
                level(2, daemon("sleeper", "Sleeper")),
            ]
        }
    )
    for _ in range(100):
        with pytest.raises(tierd.RequestTimeout):
            rt.request("relay@1", {"seconds": 0.5}, timeout=0.02)
    wait_until(lambda: _daemon(rt, "sleeper@2").state == "IDLE", timeout=10)
    assert rt.request("relay@1", {"seconds": 0}, timeout=5) == {"slept": 0}
    relay = _daemon(rt, "relay@1")
    assert (relay.restarts, relay.given_up) == (0, False)


def test_an_exception_listed_in_stop_gives_the_daemon_up_and_restart_brings_it_back(
    make_runtime,
):
    """Stop = ["ValueError"]: one raise gives Fragile up; Runtime.restart serves it again."""
    rt = make_runtime(
        {"levels": [level(1, daemon("fragile", "Fragile", supervision={"stop": ["ValueError"]}))]}
    )
    with pytest.raises(tierd.RemoteError, match="ValueError"):
        rt.request("fragile@1", "crash", timeout=5)
    assert _daemon(rt, "fragile@1").given_up
    with pytest.raises(tierd.RemoteError, match=r"tierd restart fragile@1"):
        rt.request("fragile@1", "fine", timeout=5)
    assert rt.restart("fragile@1")
    assert rt.request("fragile@1", "fine", timeout=5) == "fine"
    assert not _daemon(rt, "fragile@1").given_up
    assert not rt.restart("nobody@1")


def test_restart_of_a_live_daemon_gives_it_a_fresh_instance(make_runtime):
    """A Recorder restarted by an operator starts empty; its queue is kept."""
    rt = make_runtime({"levels": [level(1, daemon("recorder", "Recorder"))]})
    rt.send("recorder@1", "before")
    wait_until(lambda: rt.request("recorder@1", {"op": "count"}, timeout=5) == 1)
    assert rt.restart("recorder@1")
    wait_until(lambda: rt.request("recorder@1", {"op": "count"}, timeout=5) == 0)
    rt.send("recorder@1", "after")
    assert rt.request("recorder@1", {"op": "dump"}, timeout=5) == ["after"]


def test_a_nested_request_inherits_the_time_its_caller_has_left(make_runtime):
    """The relay's request to a 3 s sleeper ends with the caller's 0.3 s, not its own 30 s."""
    rt = make_runtime(
        {
            "levels": [
                level(1, daemon("relay", "Relay", options={"to": "sleeper@2"})),
                level(2, daemon("sleeper", "Sleeper")),
            ]
        }
    )
    with pytest.raises(tierd.RequestTimeout):
        rt.request("relay@1", {"seconds": 3}, timeout=0.3)
    # BLOCKED until the relay's own request times out: well before the sleeper wakes.
    wait_until(lambda: _daemon(rt, "relay@1").state == "IDLE", timeout=2)
    assert _daemon(rt, "sleeper@2").state == "WORKING"
