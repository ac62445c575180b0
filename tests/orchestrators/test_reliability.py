"""Backpressure, retries, poison messages and dead-letter replay, through a real runtime."""

from __future__ import annotations

import threading

import pytest

import tierd
from tests import daemons
from tests.topology import daemon, level
from tierd.testing import wait_until

RETRY = {"max_attempts": 3, "initial_delay": 0.01, "multiplier": 2.0, "on": ["ConnectionError"]}
FAST_RESTART = {"initial_delay": 0.01, "max_restarts": 100}


def _gated_level(make_runtime, queue_limit: int = 2, **extra):
    rt = make_runtime(
        {
            "levels": [
                level(
                    1, daemon("gate", "Gate", options={"name": "bp"}), daemon("echo", "Echo"),
                    queue_limit=queue_limit, **extra,
                )
            ]
        }
    )  # fmt: skip
    entered, release = daemons.gate("bp")
    rt.send("gate@1", "busy")
    assert entered.wait(5)
    return rt, release


def test_a_full_queue_refuses_a_send_explicitly_and_counts_it(make_runtime):
    """Beyond queue_limit, Runtime.send raises Rejected('queue full'); nothing is dead-lettered."""
    rt, release = _gated_level(make_runtime)
    rt.send("gate@1", 1)
    rt.send("gate@1", 2)
    with pytest.raises(tierd.Rejected, match="queue full"):
        rt.send("gate@1", 3)
    with pytest.raises(tierd.Rejected, match="queue full"):
        rt.request("gate@1", 4, timeout=5)
    stats = rt.statistics()[0]
    assert (stats.queued, stats.rejected, stats.dead_letters) == (2, {"queue_full": 2}, {})
    assert rt.request("echo@1", "idle daemons still take messages", timeout=5)
    release.set()
    wait_until(lambda: rt.statistics()[0].daemons[0].processed == 3)


def test_a_waiting_send_gets_in_when_room_is_made(make_runtime):
    """send(wait=True) on a full level blocks until a queued message leaves, then is accepted."""
    rt, release = _gated_level(make_runtime, queue_limit=1)
    rt.send("gate@1", 1)
    admitted: list[str] = []
    sender = threading.Thread(target=lambda: admitted.append(rt.send("gate@1", 2, wait=True)))
    sender.start()
    wait_until(lambda: rt.statistics()[0].waiting_for_room == 1)
    assert admitted == []
    release.set()
    sender.join(5)
    assert len(admitted) == 1
    wait_until(lambda: rt.statistics()[0].daemons[0].processed == 3)
    assert rt.statistics()[0].rejected == {}


def test_a_waiting_send_is_refused_when_its_timeout_passes(make_runtime):
    """A send that waits for room longer than its timeout fails with Rejected, counted once."""
    rt, _release = _gated_level(make_runtime, queue_limit=1)
    rt.send("gate@1", 1)
    with pytest.raises(tierd.Rejected, match="no room within"):
        rt.send("gate@1", 2, wait=True, timeout=0.2)
    stats = rt.statistics()[0]
    assert (stats.rejected, stats.waiting_for_room, stats.queued) == ({"queue_full": 1}, 0, 1)


def test_the_waiting_room_is_bounded(make_runtime):
    """With the waiting room full, a waiting send is refused at once: memory stays bounded."""
    rt, _release = _gated_level(make_runtime, queue_limit=1, waiting_room_limit=0)
    rt.send("gate@1", 1)
    with pytest.raises(tierd.Rejected, match="queue full"):
        rt.send("gate@1", 2, wait=True, timeout=30)


def _flaky(make_runtime, failures: int, retry=RETRY, **extra):
    spec = daemon(
        "flaky", "Flaky", options={"failures": failures}, retry=retry, restart=FAST_RESTART,
        **extra,
    )  # fmt: skip
    return make_runtime({"levels": [level(1, spec, daemon("fragile", "Fragile", **extra))]})


def test_a_retryable_failure_is_delivered_again_with_the_same_id(make_runtime):
    """A ConnectionError is retried after its backoff; the third delivery succeeds."""
    rt = _flaky(make_runtime, failures=2)
    reply = rt.request("flaky@1", "x", timeout=5)
    assert reply == {"payload": "x", "attempts": 3}
    stats = rt.statistics()[0]
    # Resumed, not restarted: the retries are the message's, the daemon keeps its instance.
    assert (stats.retries, stats.dead_letters, stats.daemons[0].restarts) == (2, {}, 0)


def test_retries_exhausted_dead_letters_and_reports_the_attempts(make_runtime):
    """After max_attempts failed deliveries the requester gets RemoteError with the count."""
    rt = _flaky(make_runtime, failures=5)
    with pytest.raises(tierd.RemoteError, match="ConnectionError") as caught:
        rt.request("flaky@1", "x", timeout=5)
    assert caught.value.attempts == 3
    assert rt.statistics()[0].dead_letters == {"retries_exhausted": 1}
    (letter,) = rt.dead_letters(1)
    assert (letter.reason, letter.message.attempts) == ("retries_exhausted", 3)


def test_a_non_retryable_error_fails_at_once(make_runtime):
    """An exception type not in ``on`` is not retried."""
    retry = {**RETRY, "on": ["TimeoutError"]}
    rt = _flaky(make_runtime, failures=1, retry=retry)
    with pytest.raises(tierd.RemoteError) as caught:
        rt.request("flaky@1", "x", timeout=5)
    assert caught.value.attempts == 1
    assert rt.statistics()[0].retries == 0


def test_backoff_multiplier_is_accepted_as_the_issue_spells_it(make_runtime):
    """``backoff_multiplier`` is another name for ``multiplier`` in ``retry``."""
    retry = {"max_attempts": 2, "initial_delay": 0.01, "backoff_multiplier": 3, "on": ["OSError"]}
    rt = _flaky(make_runtime, failures=1, retry=retry)
    assert rt.request("flaky@1", "x", timeout=5)["attempts"] == 2  # ConnectionError is an OSError


def test_a_poison_message_is_dead_lettered_instead_of_looping(make_runtime):
    """A message that crashes its daemon poison_after times is dead-lettered as poison."""
    retry = {**RETRY, "max_attempts": 100}
    rt = _flaky(make_runtime, failures=1000, retry=retry, poison_after=4)
    with pytest.raises(tierd.RemoteError) as caught:
        rt.request("flaky@1", "x", timeout=5)
    assert caught.value.attempts == 4
    assert rt.statistics()[0].dead_letters == {"poison": 1}
    wait_until(lambda: rt.statistics()[0].daemons[0].state == "IDLE")  # restarted, serving


def test_prefetched_messages_keep_their_attempts_across_a_crash(make_runtime):
    """Messages a crashed daemon held but never handled are not counted as deliveries."""
    rt = make_runtime(
        {"levels": [level(1, daemon("fragile", "Fragile", prefetch=4, restart=FAST_RESTART))]}
    )
    for _ in range(5):  # more crashes than poison_after: the innocent ones must survive
        rt.pause("fragile@1")
        rt.send("fragile@1", "crash")
        rt.send("fragile@1", "fine")
        rt.resume("fragile@1")
        wait_until(
            lambda: rt.statistics()[0].queued == 0 and not rt.statistics()[0].daemons[0].in_flight
        )
    stats = rt.statistics()[0]
    assert stats.dead_letters == {"handler_error": 5}
    assert stats.daemons[0].processed == 5


def test_dead_letters_are_replayed_as_new_messages_and_purged(make_runtime):
    """Replay re-sends a dead letter with a new id; purge forgets the rest."""
    rt = make_runtime(
        {"levels": [level(1, daemon("fragile", "Fragile", restart=FAST_RESTART),
                          daemon("recorder", "Recorder"))]}
    )  # fmt: skip
    crashed = rt.send("fragile@1", "crash")
    wait_until(lambda: len(rt.dead_letters(1)) == 1)
    with pytest.raises(tierd.UnknownRecipient):
        rt.replay_dead_letters(level=9)
    replayed = rt.replay_dead_letters(level=1, ids=[crashed])
    assert list(replayed) == [crashed]
    assert replayed[crashed] != crashed
    wait_until(lambda: len(rt.dead_letters(1)) == 1)  # it crashed again: a new letter
    (letter,) = rt.dead_letters(1)
    assert letter.message.id == replayed[crashed]
    assert letter.message.attempts == 1
    assert rt.purge_dead_letters() == 1
    assert rt.dead_letters(1) == []


def test_a_cancelled_retry_is_not_delivered_again(make_runtime):
    """Cancelling a message waiting out its retry backoff gives its requester Cancelled."""
    retry = {**RETRY, "initial_delay": 5.0}
    rt = _flaky(make_runtime, failures=1, retry=retry)
    outcome: list[BaseException] = []

    def ask() -> None:
        try:
            rt.request("flaky@1", "x", timeout=10)
        except tierd.TierdError as error:
            outcome.append(error)

    asker = threading.Thread(target=ask)
    asker.start()
    wait_until(lambda: rt.statistics()[0].retries == 1)
    (message_id,) = [m for m in daemons.Flaky.seen if daemons.Flaky.seen[m] == 1][-1:]
    assert rt.cancel(message_id)
    asker.join(5)
    assert isinstance(outcome[0], tierd.Cancelled)
