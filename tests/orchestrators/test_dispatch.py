"""Priority dispatch, FIFO order, and the IDLE-only rule, through a real runtime."""

from __future__ import annotations

import threading

import pytest

import tierd
from tests.daemons import gate
from tests.topology import daemon, level
from tierd.testing import wait_until


def _recorder_runtime(make_runtime):
    return make_runtime({"levels": [level(1, daemon("recorder", "Recorder"))]})


def test_priority_order_across_names_and_numbers(make_runtime):
    """Queued messages are handled most urgent first, names and numbers on one scale."""
    rt = _recorder_runtime(make_runtime)
    rt.pause("recorder@1")
    sent = ["background", 17, "low", 12, "normal", 7, "high", 3, "critical", 1, 20]
    for priority in sent:
        rt.send("recorder@1", priority, priority=priority)
    wait_until(lambda: rt.statistics()[0].queued == len(sent))
    rt.resume("recorder@1")
    handled = rt.request("recorder@1", {"op": "dump"}, timeout=5, priority="background")
    assert handled == ["critical", 1, 3, "high", 7, "normal", 12, "low", 17, "background", 20]


def test_fifo_within_one_priority(make_runtime):
    """Messages of one priority are handled in the order they were sent."""
    rt = _recorder_runtime(make_runtime)
    rt.pause("recorder@1")
    for n in range(50):
        rt.send("recorder@1", n, priority="low" if n % 2 else "high")
    wait_until(lambda: rt.statistics()[0].queued == 50)
    rt.resume("recorder@1")
    handled = rt.request("recorder@1", {"op": "dump"}, timeout=5, priority="background")
    assert handled == list(range(0, 50, 2)) + list(range(1, 50, 2))


def test_working_daemon_receives_nothing_more(make_runtime):
    """With the default prefetch of 1, a WORKING daemon gets no second message."""
    rt = make_runtime({"levels": [level(1, daemon("gate", "Gate", options={"name": "w"}))]})
    entered, release = gate("w")
    for n in range(3):
        rt.send("gate@1", n)
    assert entered.wait(5)
    stats = rt.statistics()[0].daemons[0]
    assert (stats.state, stats.in_flight, stats.queued) == ("WORKING", 1, 2)
    release.set()
    wait_until(lambda: rt.statistics()[0].daemons[0].processed == 3)


def test_prefetch_allows_more_in_flight(make_runtime):
    """A daemon with prefetch 3 holds three messages at once while WORKING."""
    config = {"levels": [level(1, daemon("gate", "Gate", options={"name": "p"}, prefetch=3))]}
    rt = make_runtime(config)
    entered, release = gate("p")
    for n in range(5):
        rt.send("gate@1", n)
    assert entered.wait(5)
    wait_until(lambda: rt.statistics()[0].daemons[0].in_flight == 3)
    assert rt.statistics()[0].daemons[0].queued == 2
    release.set()
    wait_until(lambda: rt.statistics()[0].daemons[0].processed == 5)


def test_blocked_daemon_receives_nothing(make_runtime):
    """A daemon BLOCKED on its own request gets no message until the reply comes."""
    rt = make_runtime(
        {
            "levels": [
                level(1, daemon("hop", "Hop")),
                level(2, daemon("gate", "Gate", options={"name": "b"})),
            ]
        }
    )
    entered, release = gate("b")
    outcome: list[object] = []
    caller = threading.Thread(
        target=lambda: outcome.append(rt.request("hop@1", {"path": ["gate@2"]}, timeout=10))
    )
    caller.start()
    assert entered.wait(5)
    rt.send("hop@1", {"path": []})
    wait_until(lambda: rt.statistics()[0].daemons[0].state == "BLOCKED")
    hop = rt.statistics()[0].daemons[0]
    assert (hop.state, hop.in_flight, hop.queued) == ("BLOCKED", 1, 1)
    release.set()
    caller.join(5)
    assert outcome == [{"path": []}]
    wait_until(lambda: rt.statistics()[0].daemons[0].processed == 2)


def test_ten_thousand_notifications_all_delivered_once(make_runtime):
    """10,000 notifications arrive, each exactly once."""
    rt = _recorder_runtime(make_runtime)
    for n in range(10_000):
        rt.send("recorder@1", n)
    handled = wait_until(
        lambda: (
            (got := rt.request("recorder@1", {"op": "dump"}, timeout=10, priority="background"))
            and len(got) >= 10_000
            and got
        ),
        timeout=30,
    )
    assert sorted(handled) == list(range(10_000))
    assert rt.statistics()[0].processed >= 10_000


def test_unknown_recipient_is_refused_at_once(make_runtime):
    """Sending to a daemon or level that does not exist raises UnknownRecipient."""
    rt = _recorder_runtime(make_runtime)
    with pytest.raises(tierd.UnknownRecipient, match="nobody@1"):
        rt.send("nobody@1", 1)
    with pytest.raises(tierd.UnknownRecipient, match="no level 9"):
        rt.request("recorder@9", 1, timeout=1)
    with pytest.raises(ValueError, match="bad address"):
        rt.send("recorder", 1)
    with pytest.raises(ValueError, match="unknown priority"):
        rt.send("recorder@1", 1, priority="urgent")


def test_a_pool_of_four_works_on_four_messages_at_once_and_reports_each(make_runtime, gates):
    """``instances = 4``: four messages in hand at once, one per instance, each in status."""
    config = {"levels": [level(1, daemon("gate", "Gate", options={"name": "pool"}, instances=4))]}
    rt = make_runtime(config)
    _entered, release = gate("pool")
    for n in range(6):
        rt.send("gate@1", n)

    def states() -> list[tuple[str, str, int]]:
        return [(d.daemon, d.state, d.in_flight) for d in rt.statistics()[0].daemons]

    assert wait_until(lambda: [s for _, s, _ in states()] == ["WORKING"] * 4)
    assert states() == [(f"gate#{n}", "WORKING", 1) for n in range(4)]
    assert rt.statistics()[0].queued == 2
    release.set()
    assert wait_until(lambda: sum(d.processed for d in rt.statistics()[0].daemons) == 6)
    exposition = rt.metrics.exposition().decode()
    assert 'tierd_daemon_state{daemon="gate#3",level="1",state="idle"} 1.0' in exposition
