"""Prometheus metrics, scraped over HTTP from a running runtime's exporter."""

from __future__ import annotations

import threading

import pytest
import zmq

import tierd
from tests.daemons import gate
from tests.metrics_helpers import fetch, parse, scrape, value
from tests.processes import free_port
from tests.topology import daemon, level
from tierd.testing import runtime_from_dict, wait_until

TOPOLOGY = {
    "runtime": {"name": "metrics-test", "metrics": "127.0.0.1:0"},
    "levels": [
        level(
            1,
            daemon("relay", "Relay", options={"to": "echo@2"}),
            daemon("recorder", "Recorder"),
            daemon("gate", "Gate", options={"name": "metrics"}),
        ),
        level(
            2,
            daemon("echo", "Echo"),
            daemon(
                "crasher",
                "Crasher",
                restart={"initial_delay": 0.01},
                supervision={"restart": ["RuntimeError"]},
            ),
        ),
    ],
}

EVERY_FAMILY = (
    "tierd_messages_received_total",
    "tierd_messages_dispatched_total",
    "tierd_messages_completed_total",
    "tierd_message_timeouts_total",
    "tierd_queue_depth",
    "tierd_inflight_requests",
    "tierd_daemon_state",
    "tierd_dispatch_latency_seconds_bucket",
    "tierd_handle_duration_seconds_bucket",
    "tierd_daemon_restarts_total",
    "tierd_dead_letters_total",
    "tierd_runtime_info",
)


@pytest.fixture
def runtime(make_runtime):
    """The TOPOLOGY, started, with its exporter on a free loopback port."""
    return make_runtime(TOPOLOGY)


def test_counts_states_and_depths_after_a_known_sequence(runtime):  # noqa: PLR0915 - one sequence
    """After a known sequence of messages every counter is exact and every daemon state right."""
    rt = runtime
    for n in range(3):
        assert rt.request("echo@2", n, timeout=5) == n
    for n in range(2):
        assert rt.request("relay@1", n, timeout=5, priority="high") == n
    for n in range(4):
        rt.send("recorder@1", n, priority="low")
    wait_until(lambda: rt.request("recorder@1", {"op": "count"}, timeout=5) == 4)
    with pytest.raises(tierd.RemoteError):
        rt.request("crasher@2", None, timeout=5)
    wait_until(lambda: rt.statistics()[1].daemons[1].state == "IDLE")
    rt.pause("recorder@1")
    rt.send("recorder@1", "a", priority="background")
    rt.send("recorder@1", "b", priority="background")
    entered, release = gate("metrics")
    waiting = threading.Thread(target=rt.request, args=("gate@1", "x"), kwargs={"timeout": 10})
    waiting.start()
    assert entered.wait(5)
    wait_until(lambda: rt.statistics()[0].queued == 2)

    m = scrape(rt.metrics.address)

    received = "tierd_messages_received_total"
    assert value(m, received, level=2, kind="request", priority=10) == 3 + 1  # echo, crasher
    assert value(m, received, level=2, kind="request", priority=5) == 2
    assert value(m, received, level=1, kind="request", priority=5) == 2
    assert value(m, received, level=1, kind="notification", priority=15) == 4
    assert value(m, received, level=1, kind="notification", priority=20) == 2
    # The recorder's count requests (normal priority) and the gate's request.
    count_requests = value(m, received, level=1, kind="request", priority=10)
    assert count_requests is not None
    assert count_requests >= 2
    assert value(m, received, level=2, kind="request", priority=1) == 0
    assert value(m, received, level=2, kind="notification", priority=10) == 0

    assert value(m, "tierd_messages_completed_total", level=2, outcome="ok") == 5
    assert value(m, "tierd_messages_completed_total", level=2, outcome="error") == 1
    assert value(m, "tierd_messages_completed_total", level=1, outcome="ok") == 2 + (
        count_requests - 1
    )
    assert value(m, "tierd_messages_dispatched_total", level=2) == 6
    assert value(m, "tierd_message_timeouts_total", level=1) == 0

    assert value(m, "tierd_queue_depth", level=1, priority=20) == 2
    for priority in (1, 5, 10, 15):
        assert value(m, "tierd_queue_depth", level=1, priority=priority) == 0
    assert value(m, "tierd_queue_depth", level=2, priority=10) == 0
    assert value(m, "tierd_inflight_requests", level=1) == 1

    def states(daemon_id: str, level_number: int) -> dict[str, float | None]:
        return {
            state: value(m, "tierd_daemon_state", level=level_number, daemon=daemon_id, state=state)
            for state in ("idle", "working", "blocked", "error")
        }

    assert states("gate", 1) == {"idle": 0, "working": 1, "blocked": 0, "error": 0}
    assert states("recorder", 1) == {"idle": 1, "working": 0, "blocked": 0, "error": 0}
    assert states("crasher", 2) == {"idle": 1, "working": 0, "blocked": 0, "error": 0}
    assert value(m, "tierd_daemon_restarts_total", level=2, daemon="crasher") == 1
    assert value(m, "tierd_daemon_restarts_total", level=2, daemon="echo") == 0
    assert value(m, "tierd_dead_letters_total", level=2, reason="expired") == 0

    latency = "tierd_dispatch_latency_seconds"
    assert value(m, f"{latency}_count", level=2) == 6
    assert value(m, f"{latency}_bucket", level=2, le="+Inf") == 6
    assert value(m, "tierd_handle_duration_seconds_count", level=2, daemon="echo") == 5
    assert value(m, "tierd_runtime_info", name="metrics-test", version=tierd.__version__) == 1

    release.set()
    waiting.join(5)


def test_every_design_family_is_exported(runtime):
    """Every metric family of DESIGN §7 has series as soon as the runtime runs."""
    names = {name for name, _labels in scrape(runtime.metrics.address)}
    assert set(EVERY_FAMILY) <= names


def test_histogram_buckets_are_cumulative(runtime):
    """Bucket counts never decrease with ``le`` and end at the count."""
    for n in range(20):
        runtime.request("echo@2", n, timeout=5)
    m = scrape(runtime.metrics.address)
    buckets = sorted(
        (float(dict(labels)["le"]), v)
        for (name, labels), v in m.items()
        if name == "tierd_handle_duration_seconds_bucket" and dict(labels)["daemon"] == "echo"
    )
    counts = [count for _bound, count in buckets]
    assert counts == sorted(counts)
    assert counts[-1] == 20
    assert buckets[-1][0] == float("inf")


def test_two_runtimes_in_one_process_have_their_own_metrics(make_runtime):
    """Two runtimes in one process export separate registries that do not clash."""
    first = make_runtime({**TOPOLOGY, "runtime": {"name": "first", "metrics": "127.0.0.1:0"}})
    second = make_runtime({**TOPOLOGY, "runtime": {"name": "second", "metrics": "127.0.0.1:0"}})
    first.request("echo@2", 1, timeout=5)
    a, b = scrape(first.metrics.address), scrape(second.metrics.address)
    assert value(a, "tierd_messages_received_total", level=2, kind="request", priority=10) == 1
    assert value(b, "tierd_messages_received_total", level=2, kind="request", priority=10) == 0
    assert value(b, "tierd_runtime_info", name="second", version=tierd.__version__) == 1


def test_second_runtime_on_the_same_metrics_port_is_refused(runtime):
    """A runtime whose metrics address is taken fails at start, naming it; the first serves on."""
    taken = runtime.metrics.address
    second = runtime_from_dict({**TOPOLOGY, "runtime": {"name": "second", "metrics": taken}})
    with pytest.raises(tierd.MetricsServerError, match=f"cannot serve metrics on {taken}"):
        second.start()
    assert second.orchestrators == {}
    assert second.metrics.address == ""
    names = [thread.name for thread in threading.enumerate()]
    assert not [name for name in names if "second" in name]
    assert names.count(f"tierd-metrics-{taken}") == 1
    assert "tierd_runtime_info" in fetch(taken)


def test_stop_closes_the_exporter(make_runtime):
    """After stop() the metrics port no longer answers."""
    rt = make_runtime(TOPOLOGY)
    address = rt.metrics.address
    rt.stop()
    with pytest.raises(OSError, match="refused"):
        fetch(address)
    assert rt.metrics.address == ""


def test_a_scrape_after_stop_still_answers_with_the_final_counts(make_runtime):
    """Collecting a stopped runtime is no error: it shows the counts as they were at the end."""
    rt = make_runtime(TOPOLOGY)
    rt.request("echo@2", 1, timeout=5)
    rt.stop()
    samples = parse(rt.metrics.exposition().decode())
    assert value(samples, "tierd_runtime_info", name="metrics-test", version=tierd.__version__) == 1
    received = value(samples, "tierd_messages_received_total", level=2, kind="request", priority=10)
    assert received == 1


def test_peer_up_and_rejected_frames_come_from_the_bridge(make_runtime, make_client):
    """``tierd_peer_up`` is 1 for a live peer; a garbage frame counts in rejected frames."""
    endpoint_b = f"tcp://127.0.0.1:{free_port()}"
    endpoint_a = f"tcp://127.0.0.1:{free_port()}"
    make_runtime(
        {
            "runtime": {"name": "b", "endpoint": endpoint_b},
            "levels": [level(2, daemon("echo", "Echo"))],
        }
    )
    a = make_runtime(
        {
            "runtime": {"name": "a", "endpoint": endpoint_a, "metrics": "127.0.0.1:0"},
            "levels": [level(1, daemon("relay", "Relay", options={"to": "echo@2"}))],
            "peers": [{"endpoint": endpoint_b, "levels": [2]}],
        }
    )
    assert make_client(endpoint_a).request("relay@1", "across", timeout=10) == "across"
    wait_until(lambda: value(scrape(a.metrics.address), "tierd_peer_up", peer=endpoint_b) == 1)
    context = zmq.Context.instance()
    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    try:
        dealer.connect(endpoint_a)
        dealer.send(b"\xc1\x00\xff not msgpack")
        assert dealer.poll(5000), "no error reply to a garbage frame"
        dealer.recv_multipart()
    finally:
        dealer.close()
    samples = scrape(a.metrics.address)
    assert value(samples, "tierd_rejected_frames_total", reason="malformed") == 1


def test_queue_limit_is_each_levels_configured_limit(make_runtime):
    """``tierd_queue_limit{level}`` is the level's ``queue_limit``; 100000 when unset."""
    rt = make_runtime(
        {
            "runtime": {"metrics": "127.0.0.1:0"},
            "levels": [
                level(1, daemon("echo", "Echo"), queue_limit=250),
                level(2, daemon("e", "Echo")),
            ],
        }
    )
    samples = scrape(rt.metrics.address)
    assert value(samples, "tierd_queue_limit", level=1) == 250
    assert value(samples, "tierd_queue_limit", level=2) == 100_000
