"""Crashes, restarts with backoff, and giving up, through a real runtime."""

from __future__ import annotations

import threading
import time

import pytest

import tierd
from tests.topology import daemon, level
from tierd.testing import runtime_from_dict, wait_until


def _fragile(make_runtime, **restart):
    policy = {"initial_delay": 0.05, "multiplier": 2.0, "max_restarts": 3, "window": 60, **restart}
    restarted = {"restart": ["ValueError"]}
    return make_runtime(
        {"levels": [level(1, daemon("fragile", "Fragile", restart=policy, supervision=restarted))]}
    )


def _daemon_stats(rt):
    return rt.statistics()[0].daemons[0]


def test_crash_gives_remote_error_and_the_daemon_restarts(make_runtime):
    """A raising handler gives the requester RemoteError; the restarted daemon serves again."""
    rt = _fragile(make_runtime)
    with pytest.raises(
        tierd.RemoteError, match="fragile@1 raised ValueError: fragile daemon broke"
    ) as caught:
        rt.request("fragile@1", "crash", timeout=5)
    assert (caught.value.error_type, caught.value.error_text) == (
        "ValueError",
        "fragile daemon broke",
    )
    assert rt.request("fragile@1", "fine", timeout=5) == "fine"
    stats = _daemon_stats(rt)
    assert (stats.state, stats.restarts, stats.errors, stats.processed) == ("IDLE", 1, 1, 1)


def test_messages_wait_through_the_restart_backoff(make_runtime):
    """Messages sent while the daemon is in ERROR wait for its restart, after the backoff delay."""
    rt = _fragile(make_runtime, initial_delay=0.3)
    with pytest.raises(tierd.RemoteError):
        rt.request("fragile@1", "crash", timeout=5)
    crashed_at = time.monotonic()
    assert _daemon_stats(rt).state == "ERROR"
    assert rt.request("fragile@1", "after", timeout=5) == "after"
    assert time.monotonic() - crashed_at >= 0.25


def test_backoff_grows_between_restarts(make_runtime):
    """Each restart in the window waits `multiplier` times longer than the one before."""
    rt = _fragile(make_runtime, initial_delay=0.1, multiplier=3.0, max_restarts=5)
    gaps = []
    for _ in range(3):
        with pytest.raises(tierd.RemoteError):
            rt.request("fragile@1", "crash", timeout=5)
        crashed_at = time.monotonic()
        wait_until(lambda: _daemon_stats(rt).state == "IDLE", timeout=5, interval=0.002)
        gaps.append(time.monotonic() - crashed_at)
    assert gaps[0] >= 0.09
    assert gaps[1] >= 0.29
    assert gaps[2] >= 0.89


def test_gives_up_after_the_limit_and_never_goes_silent(make_runtime):
    """Past max_restarts in the window the daemon is given up; queued and new requests fail."""
    rt = _fragile(make_runtime, max_restarts=2, initial_delay=0.01)
    for _ in range(2):
        with pytest.raises(tierd.RemoteError):
            rt.request("fragile@1", "crash", timeout=5)
        wait_until(lambda: _daemon_stats(rt).state == "IDLE")
    rt.pause("fragile@1")
    outcomes: dict[str, BaseException] = {}

    def request(payload: str, priority: str) -> None:
        try:
            rt.request("fragile@1", payload, timeout=10, priority=priority)
        except tierd.TierdError as error:
            outcomes[payload] = error

    callers = [
        threading.Thread(target=request, args=("crash", "critical")),
        threading.Thread(target=request, args=("queued", "low")),
    ]
    for caller in callers:
        caller.start()
    wait_until(lambda: rt.statistics()[0].queued == 2)
    rt.resume("fragile@1")
    for caller in callers:
        caller.join(5)
    assert isinstance(outcomes["crash"], tierd.RemoteError)
    assert outcomes["crash"].error_type == "ValueError"
    assert isinstance(outcomes["queued"], tierd.RemoteError)
    assert outcomes["queued"].error_type == "DaemonGivenUp"
    stats = _daemon_stats(rt)
    assert (stats.state, stats.given_up, stats.restarts) == ("ERROR", True, 2)
    with pytest.raises(tierd.RemoteError, match="no longer restarted"):
        rt.request("fragile@1", "later", timeout=5)
    assert rt.statistics()[0].dead_letters["daemon_gave_up"] == 2  # the queued one and "later"


def test_crashing_notification_is_dead_lettered(make_runtime):
    """A notification whose handler raised is dead-lettered with the error."""
    rt = _fragile(make_runtime)
    message_id = rt.send("fragile@1", "crash")
    wait_until(lambda: rt.statistics()[0].dead_letters.get("handler_error") == 1)
    (letter,) = rt.dead_letters(1)
    assert letter.message.id == message_id
    assert "ValueError" in letter.detail


def test_prefetched_messages_of_a_crashed_daemon_are_not_lost(make_runtime):
    """Messages a crashed daemon had prefetched are requeued and handled after its restart."""
    policy = {"initial_delay": 0.01}
    rt = make_runtime(
        {
            "levels": [
                level(
                    1,
                    daemon(
                        "fragile",
                        "Fragile",
                        prefetch=4,
                        restart=policy,
                        supervision={"restart": ["ValueError"]},
                    ),
                    daemon("recorder", "Recorder"),
                )
            ]
        }
    )
    rt.pause("fragile@1")
    for payload in ["crash", "a", "b", "c"]:
        rt.send("fragile@1", payload)
    rt.resume("fragile@1")
    wait_until(lambda: _daemon_stats(rt).processed == 3)
    assert _daemon_stats(rt).restarts == 1


def test_failing_on_start_is_a_crash_too(make_runtime):
    """A daemon whose on_start raises is restarted until it starts."""
    rt = make_runtime(
        {
            "levels": [
                level(
                    1,
                    daemon(
                        "bad", "BadStart", options={"name": "s"}, restart={"initial_delay": 0.01}
                    ),
                )
            ]
        }
    )
    assert rt.request("bad@1", None, timeout=5) == 3
    assert _daemon_stats(rt).restarts == 2


def test_a_constructor_that_raises_fails_the_start():
    """A daemon that cannot be built stops the runtime's start with the constructor's error."""
    rt = runtime_from_dict({"levels": [level(1, daemon("broken", "FailingConstructor"))]})
    with pytest.raises(RuntimeError, match="constructor fails on purpose"):
        rt.start()
