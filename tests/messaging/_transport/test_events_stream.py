"""Live events on the runtime's PUB socket, read by `Client.events` and `AsyncClient.events`."""

from __future__ import annotations

import asyncio
import shutil
import time
from typing import Any

import msgpack
import pytest
import zmq

import tierd
from tests import topology
from tests.metrics_helpers import parse, value
from tests.network import echo_level, endpoint, network_config
from tests.processes import ROOT
from tierd.config import parse_config
from tierd.messaging._transport.client import Curve, EventSubscription
from tierd.messaging._transport.event_wire import decode_event, subscriber_endpoint
from tierd.messaging._transport.security import generate_key_pair, load_key_pair, load_public_key
from tierd.testing import wait_until

pytestmark = pytest.mark.timeout(30)

KINDS = [
    {"kind": "three", "class": "tests.process.kinds:Three"},
    {"kind": "nap", "class": "tests.process.kinds:Nap"},
]


@pytest.fixture
def served(make_runtime, make_client, tmp_path):
    address, events = endpoint(), endpoint()
    crasher = topology.daemon("crasher", "Crasher")
    config = network_config(
        address, echo_level(1, crasher), events=events, data_dir=str(tmp_path / "d")
    )
    config["processes"] = {"kinds": KINDS}
    runtime = make_runtime(config)
    return runtime, make_client(address)


def live(client: tierd.Client, *prefixes: str, timeout: float = 10.0) -> EventSubscription:
    """A subscription known to be in place: it has seen a process submitted after it."""
    stream = client.events(*prefixes, "process.three.", timeout=0.2)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        primer = client.processes.submit("three", 0)
        if any(event.get("process_id") == primer for event in stream):
            stream.timeout = timeout
            return stream
    stream.close()
    raise AssertionError("the subscription never saw an event")


def until_finished(stream: EventSubscription, pid: str) -> list[dict[str, Any]]:
    seen = []
    for event in stream:
        if event.get("process_id") == pid:
            seen.append(event)
            if event["type"] in {"process_completed", "process_failed", "process_cancelled"}:
                return seen
    raise AssertionError(f"the stream went quiet before {pid} finished: {seen}")


def test_every_transition_arrives_in_order_with_no_gap(served):
    """The events a subscriber gets are the process's history, seq 1..n, then the status seq."""
    _, client = served
    with live(client, "process.") as stream:
        pid = client.processes.submit("three", 1)
        events = until_finished(stream, pid)
    history = client.processes.history(pid)
    assert [e["seq"] for e in events] == list(range(1, len(history) + 1))
    assert [e["type"] for e in events] == [e["type"] for e in history]
    assert all(e["topic"] == f"process.three.{pid}" and e["kind"] == "three" for e in events)
    assert client.processes.get(pid)["seq"] == events[-1]["seq"]


def test_a_late_subscriber_resyncs_from_the_status(served):
    """Status seq s, then every event above s: together, the whole history with no gap."""
    _, client = served
    pid = client.processes.submit("nap", {"seconds": 0.6})
    wait_until(lambda: client.processes.get(pid)["seq"] >= 4)  # running, progress under way
    with live(client, f"process.nap.{pid}") as stream:
        status = client.processes.get(pid)
        later = [e for e in until_finished(stream, pid) if e["seq"] > status["seq"]]
    seqs = [status["seq"]] + [e["seq"] for e in later]
    assert seqs == list(range(status["seq"], status["seq"] + len(seqs)))
    history = client.processes.history(pid)
    assert history[-1]["seq"] == later[-1]["seq"]
    assert later[-1]["type"] == "process_completed"


def test_prefixes_filter_on_the_topic(served):
    """Subscribed to one process's topic: no event of another process arrives."""
    _, client = served
    wanted = client.processes.submit("nap", {"seconds": 0.3})
    with live(client, f"process.nap.{wanted}") as stream:
        other = client.processes.submit("nap", {"seconds": 0.1})
        events = until_finished(stream, wanted)
        stream.timeout = 0.3
        rest = list(stream)  # until quiet
    ids = {e["process_id"] for e in [*events, *rest] if e["kind"] == "nap"}
    assert ids == {wanted}
    assert other not in ids


def test_daemon_health_changes_are_published_and_per_message_moves_are_not(served):
    """Errors, recoveries, pauses and resumes arrive on daemon.<level>.<id>.

    A handled message (IDLE -> WORKING -> IDLE) makes no event: that is the hot path.
    """
    _, client = served
    with live(client, "daemon.1.") as stream:
        assert client.request("echo@1", "hi", timeout=5) == "hi"
        with pytest.raises(tierd.RemoteError):
            client.request("crasher@1", "boom", timeout=5)
        client.pause("echo@1")
        client.resume("echo@1")
        stream.timeout = 2
        seen = []
        for event in stream:
            if event["type"] != "daemon_state":
                continue  # the primers' process events
            seen.append((event["daemon"], event["change"], event["previous"], event["state"]))
            if event["change"] == "resumed":
                break
    assert seen == [
        ("crasher", "error", "WORKING", "ERROR"),
        ("crasher", "recovered", "ERROR", "IDLE"),
        ("echo", "paused", "IDLE", "IDLE"),
        ("echo", "resumed", "IDLE", "IDLE"),
    ]
    assert event["topic"] == "daemon.1.echo"
    assert event["level"] == 1
    assert event["paused"] is False


def test_a_stalled_subscriber_never_slows_the_runtime(served):
    """A SUB that never reads (RCVHWM 1): every process completes and a reader misses nothing."""
    runtime, client = served
    context = zmq.Context()
    stalled = context.socket(zmq.SUB)
    stalled.setsockopt(zmq.RCVHWM, 1)
    stalled.setsockopt(zmq.RCVBUF, 4096)
    stalled.setsockopt(zmq.SUBSCRIBE, b"")
    stalled.connect(runtime.events_address)
    try:
        with live(client, "process.three.") as stream:
            pids = [client.processes.submit("three", n) for n in range(300)]
            for pid in pids:
                client.processes.wait(pid, timeout=20)
            seen: dict[str, list[int]] = {}
            for event in stream:
                seen.setdefault(event["process_id"], []).append(event["seq"])
                if all(len(seen.get(pid, [])) >= 9 for pid in pids):  # 9 events each
                    break
        for pid in pids:
            assert seen[pid] == list(range(1, 10)), pid
        assert runtime.network_statistics().events_dropped == 0  # the queue never filled
        samples = parse(runtime.metrics.exposition().decode())
        assert value(samples, "tierd_events_dropped_total") == 0
        assert value(samples, "tierd_events_published_total") >= 9 * len(pids)
        assert stalled.poll(0)  # it was sent events, and read none of them
    finally:
        stalled.close(linger=0)
        context.term()


def test_the_events_endpoint_comes_from_the_status(served):
    """The status says where the runtime publishes; a wildcard host is the client's host."""
    runtime, client = served
    assert client.status()["events"] == runtime.events_address
    assert subscriber_endpoint("tcp://0.0.0.0:5556", "tcp://10.1.2.3:5555") == "tcp://10.1.2.3:5556"
    assert subscriber_endpoint("tcp://127.0.0.1:7", "tcp://h:5555") == "tcp://127.0.0.1:7"


def test_a_runtime_without_events_says_so(make_runtime, make_client):
    """Client.events against a runtime whose runtime.events is "": ConfigError naming the key."""
    address = endpoint()
    make_runtime(network_config(address, echo_level(1)))
    client = make_client(address)
    with pytest.raises(tierd.ConfigError, match=r"publishes no events: set runtime.events"):
        client.events("process.")


def test_frames_that_are_not_events_are_refused():
    """Untrusted frames: wrong count, not msgpack, not a map, no type, topic mismatch."""
    good = [b"process.k.1", msgpack.packb({"type": "x", "topic": "process.k.1", "seq": 1})]
    assert decode_event(good) == {"type": "x", "topic": "process.k.1", "seq": 1}
    for frames in (
        [b"t"],
        [b"t", b"\xc1"],
        [b"t", msgpack.packb([1, 2])],
        [b"t", msgpack.packb({"topic": "t"})],
        [b"other", good[1]],
        [b"\xff", good[1]],
        [good[0], good[1] + b"x" * 10],
    ):
        assert decode_event(frames, max_bytes=40) is None, frames


def test_async_client_follows_events(served):
    """AsyncClient.events: an async iterator of the same events."""
    runtime, _ = served
    address = runtime.config.runtime.endpoint

    async def follow() -> list[str]:
        client = tierd.AsyncClient(address)
        async with client, client.events("process.three.", timeout=0.2) as stream:
            for _ in range(50):
                pid = runtime.processes.submit("three", 1)
                types = [e["type"] async for e in stream if e["process_id"] == pid]
                if types and types[0] == "process_submitted":
                    return types
        raise AssertionError("no events")

    types = asyncio.run(follow())
    assert types[-1] == "process_completed"


def test_a_non_loopback_events_endpoint_needs_curve_or_insecure():
    """runtime.events beyond loopback without CURVE is refused, naming the key."""
    levels = [{"level": 1, "daemons": [{"id": "e", "class": "tierd.actors.builtin:Echo"}]}]
    with pytest.raises(tierd.ConfigError, match=r"runtime\.events: 'tcp://0.0.0.0:5556' is not"):
        parse_config({"runtime": {"events": "tcp://0.0.0.0:5556"}, "levels": levels})
    parse_config({"runtime": {"events": "tcp://0.0.0.0:5556", "insecure": True}, "levels": levels})
    with pytest.raises(tierd.ConfigError, match=r"runtime\.events: 'tcp://1.2.3.4:5556' is not"):
        parse_config({"runtime": {"events": "tcp://1.2.3.4:5556"}, "levels": levels})
    with pytest.raises(tierd.ConfigError, match=r"runtime\.events: .* is runtime.endpoint too"):
        parse_config({"runtime": {"events": "tcp://127.0.0.1:5555"}, "levels": levels})


def test_under_curve_only_allowed_keys_follow_events(make_runtime, make_client, tmp_path):
    """The events socket takes the endpoint's keys: a friend's SUB gets events, no stranger's."""
    keys = {name: generate_key_pair(tmp_path / name, name) for name in ("server", "friend", "x")}
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    shutil.copy(keys["friend"][0], allowed)
    address = endpoint()
    config = network_config(
        address, echo_level(1), events=endpoint(), data_dir=str(tmp_path / "d"),
        curve_secret_key=str(keys["server"][1]), curve_allowed_clients=str(allowed),
    )  # fmt: skip
    config["processes"] = {"kinds": KINDS}
    runtime = make_runtime(config)
    server = keys["server"][0]
    friend = make_client(address, server_key=server, client_key=keys["friend"][1])
    stranger_keys = load_key_pair(keys["x"][1])
    stranger = EventSubscription(
        runtime.events_address, timeout=0.5,
        curve=Curve(stranger_keys, load_public_key(server)),
    )  # fmt: skip
    with live(friend, "process.") as stream:
        pid = friend.processes.submit("three", 1)
        assert until_finished(stream, pid)[-1]["type"] == "process_completed"
    with stranger:
        assert list(stranger) == []


def test_the_progress_display_of_the_events_guide_runs(served, capsys):
    """docs/events.md's example follows a process to its end, printing its progress."""
    text = (ROOT / "docs" / "events.md").read_text()
    section = text[text.index("## A progress display in Python") :]
    code = section[section.index("```python\n") + 10 : section.index("\n```\n")]
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/events.md", "exec"), namespace)  # noqa: S102 - our own guide
    _, client = served
    pid = client.processes.submit("nap", {"seconds": 1.2})
    final = namespace["follow"](client, pid)
    assert final["status"] == "completed"
    printed = capsys.readouterr().out.splitlines()
    assert any(line.startswith(("first: ", "second: ")) and "tick" in line for line in printed)
