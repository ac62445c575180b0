"""Runtimes joined by the ZeroMQ bridge, in one process, over real loopback sockets."""

from __future__ import annotations

import threading
import time

import msgpack
import pytest
import zmq

import tierd
from tests import daemons
from tests.network import FAST_PEER, echo_level, endpoint, network_config
from tests.topology import daemon, level
from tierd.testing import runtime_from_dict, wait_until

LEVEL_2 = level(
    2,
    daemon("echo", "Echo"),
    daemon("recorder", "Recorder"),
    daemon("sleeper", "Sleeper"),
    daemon("crasher", "Crasher"),
    daemon("hop", "Hop"),
)


@pytest.fixture(params=["local", "peer"])
def front(request, make_runtime):
    """A runtime serving level 1 (relay, hop) that reaches level 2 in-process or through a peer."""
    level_1 = level(1, daemon("relay", "Relay", options={"to": "echo@2"}), daemon("hop", "Hop"))
    if request.param == "local":
        return make_runtime(network_config(endpoint(), level_1, LEVEL_2))
    back_address = endpoint()
    make_runtime(network_config(back_address, LEVEL_2, name="back"))
    peer = {"endpoint": back_address, "levels": [2], **FAST_PEER}
    return make_runtime(network_config(endpoint(), level_1, peers=[peer], name="front"))


def test_link_relays_a_request_and_its_reply(front):
    """A request to another level is answered with the reply of the daemon there."""
    assert front.request("relay@1", {"x": [1, 2]}, timeout=5) == {"x": [1, 2]}
    assert front.request("echo@2", "direct", timeout=5) == "direct"


def test_link_carries_a_remote_error(front):
    """A handler that raises on the other level gives the requester RemoteError."""
    with pytest.raises(tierd.RemoteError, match="RuntimeError"):
        front.request("crasher@2", None, timeout=5)


def test_link_reports_an_unknown_daemon(front):
    """A daemon the other level does not have gives UnknownRecipient."""
    with pytest.raises(tierd.UnknownRecipient, match="nope@2"):
        front.request("nope@2", None, timeout=5)


def test_link_times_out_a_slow_reply(front):
    """A reply slower than the request's timeout gives RequestTimeout."""
    with pytest.raises(tierd.RequestTimeout):
        front.request("sleeper@2", {"seconds": 1.0}, timeout=0.2)


def test_link_delivers_notifications_in_order(front):
    """Notifications to another level arrive, each once, in the order sent."""
    for n in range(20):
        front.send("recorder@2", n)
    assert wait_until(
        lambda: front.request("recorder@2", {"op": "dump"}, timeout=5) == list(range(20))
    )


def test_levels_bridge_both_ways_with_replies_correlated(make_runtime):
    """Level 1 asks level 2 in another runtime and back again; every reply finds its requester."""
    address_a, address_b = endpoint(), endpoint()
    hops = (
        daemon("hop", "Hop"),
        daemon("hop2", "Hop"),
        daemon("relay", "Relay", options={"to": "echo@2"}),
    )
    a = make_runtime(network_config(
        address_a, echo_level(1, *hops), name="a",
        peers=[{"endpoint": address_b, "levels": [2], **FAST_PEER}],
    ))  # fmt: skip
    b = make_runtime(network_config(
        address_b,
        echo_level(2, daemon("hop", "Hop"), daemon("relay", "Relay", options={"to": "echo@1"})),
        name="b", peers=[{"endpoint": address_a, "levels": [1], **FAST_PEER}],
    ))  # fmt: skip
    assert a.request("hop@1", {"path": ["hop@2", "hop2@1"]}, timeout=5) == "hop2@1"
    results: dict[tuple[str, int], list[object]] = {}

    def ask(runtime: tierd.Runtime, name: str, target: str, worker: int) -> None:
        results[name, worker] = [
            runtime.request(target, {"w": worker, "n": n}, timeout=10) for n in range(25)
        ]

    threads = [
        threading.Thread(target=ask, args=(runtime, name, target, worker))
        for runtime, name, target in ((a, "a", "relay@1"), (b, "b", "relay@2"))
        for worker in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for (_, worker), replies in results.items():
        assert replies == [{"w": worker, "n": n} for n in range(25)]
    assert len(results) == 8


def test_deadlock_across_runtimes_is_detected(make_runtime):
    """hop@1 waits on hop@2 in another runtime, which asks hop@1 back: Deadlock, not a timeout."""
    address_a, address_b = endpoint(), endpoint()
    a = make_runtime(network_config(
        address_a, level(1, daemon("hop", "Hop")), name="a",
        peers=[{"endpoint": address_b, "levels": [2], **FAST_PEER}],
    ))  # fmt: skip
    make_runtime(network_config(
        address_b, level(2, daemon("hop", "Hop")), name="b",
        peers=[{"endpoint": address_a, "levels": [1], **FAST_PEER}],
    ))  # fmt: skip
    reply = a.request("hop@1", {"path": ["hop@2", "hop@1"], "timeout": 20}, timeout=5)
    assert reply["error"] == "Deadlock"
    assert "hop@2 -> hop@1 -> hop@2" in reply["text"]


def _answer(dealer: zmq.Socket) -> dict:
    assert dealer.poll(5000), "the runtime did not answer"
    return msgpack.unpackb(dealer.recv())


@pytest.fixture
def raw_dealer():
    """Connect raw DEALER sockets that send any bytes; closed (linger 0) after the test."""
    context = zmq.Context()
    sockets: list[zmq.Socket] = []

    def connect(address: str) -> zmq.Socket:
        dealer = context.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.connect(address)
        sockets.append(dealer)
        return dealer

    yield connect
    for dealer in sockets:
        dealer.close(linger=0)
    context.term()


def test_bad_frames_are_answered_counted_and_survived(make_runtime, make_client, raw_dealer):
    """Garbage, truncated, oversized, wrong-version frames: answered, counted, and survived.

    A normal request right after them still works.
    """
    address = endpoint()
    runtime = make_runtime(network_config(address, LEVEL_2, max_message_bytes=64 * 1024))
    dealer = raw_dealer(address)
    good = msgpack.packb({"v": 1, "t": "ping"})
    frames = {
        "garbage": [b"\xc1\x00\xff not msgpack"],
        "truncated": [msgpack.packb({"v": 1, "t": "msg", "m": {"id": "x" * 40}})[:20]],
        "oversized": [b"\x00" * (64 * 1024 + 1)],
        "wrong version": [msgpack.packb({"v": 2, "t": "ping"})],
        "unknown type": [msgpack.packb({"v": 1, "t": "gossip"})],
        "two parts": [good, good],
        "invalid message": [
            msgpack.packb({"v": 1, "t": "msg", "m": {"id": "m1", "kind": "request"}})
        ],
    }
    for parts in frames.values():
        dealer.send_multipart(parts)
        answer = _answer(dealer)
        assert answer["t"] == "error"
        assert answer["error"]["error"] == "Rejected"
    assert answer["id"] == "m1"  # an invalid message is answered about its id
    rejected = runtime.network_statistics().rejected_frames
    assert rejected == {
        "malformed": 3,
        "oversized": 1,
        "bad_version": 1,
        "unknown_type": 1,
        "invalid": 1,
    }
    assert make_client(address).request("echo@2", "still here", timeout=5) == "still here"


def test_a_second_runtime_on_the_same_endpoint_fails_and_leaves_the_first(
    make_runtime, make_client
):
    """A runtime on an endpoint in use fails with BindError naming it; the first keeps serving."""
    address = endpoint()
    make_runtime(network_config(address, LEVEL_2))
    second = runtime_from_dict(network_config(address, LEVEL_2, name="second"))
    with pytest.raises(tierd.BindError, match=address.replace(".", r"\.")):
        second.start()
    assert make_client(address).request("echo@2", 1, timeout=5) == 1


def front_that_knows_back(make_runtime, back_address, **peer_extra):
    """A front runtime that heard from its back (level 2 is not durable there), now down."""
    peer = {"endpoint": back_address, "levels": [2], **FAST_PEER, **peer_extra}
    back = make_runtime(network_config(back_address, LEVEL_2, name="back"))
    front = make_runtime(network_config(endpoint(), level(1, daemon("echo", "Echo")), peers=[peer]))
    wait_until(lambda: front.bridge.peers[0].durable_levels == frozenset(), timeout=5)
    back.stop(grace_period=0)
    wait_until(lambda: not front.network_statistics().peers_up[back_address], timeout=5)
    return front


def test_messages_for_a_down_peer_are_held_then_delivered_once(make_runtime):
    """Messages for a down peer's non-durable level are held, then delivered exactly once."""
    back_address = endpoint()
    front = front_that_knows_back(make_runtime, back_address)
    ids = [front.send("recorder@2", n) for n in range(10)]
    assert len(set(ids)) == 10
    with pytest.raises(tierd.RequestTimeout):
        front.request("echo@2", "too late", timeout=0.3)
    back = make_runtime(network_config(back_address, LEVEL_2, name="back"))
    wait_until(lambda: front.network_statistics().peers_up[back_address], timeout=5)
    assert wait_until(
        lambda: back.request("recorder@2", {"op": "dump"}, timeout=5) == list(range(10))
    )
    assert front.request("echo@2", "now", timeout=5) == "now"
    assert back.request("recorder@2", {"op": "count"}, timeout=5) == 10


def test_a_full_buffer_for_a_down_peer_is_refused_clearly(make_runtime):
    """A notification meeting a full buffer for a down peer is refused, naming the limit."""
    front = front_that_knows_back(make_runtime, endpoint(), buffer_limit=3)
    for n in range(3):
        front.send("recorder@2", n)
    wait_until(lambda: front.bridge.peers[0].held_count == 3)
    with pytest.raises(tierd.Rejected, match="buffer_limit"):
        front.send("recorder@2", 3)


def test_a_send_to_a_peer_that_never_answered_waits_for_its_ack(make_runtime):
    """Not knowing whether the peer's level is durable, a send is confirmed by the peer only."""
    back_address = endpoint()
    peer = {"endpoint": back_address, "levels": [2], **FAST_PEER}
    front = make_runtime(network_config(endpoint(), level(1, daemon("echo", "Echo")), peers=[peer]))
    with pytest.raises(tierd.Rejected, match="is down: the message was not accepted"):
        front.send("recorder@2", "unconfirmed", timeout=0.3)
    back = make_runtime(network_config(back_address, LEVEL_2, name="back"))
    assert front.send("recorder@2", "confirmed", timeout=10)
    assert back.request("recorder@2", {"op": "count"}, timeout=5) == 1


def test_a_failing_daemon_leaves_no_network_behind(make_runtime, make_client):
    """When a daemon cannot be built the start fails and the endpoint is free again."""
    address = endpoint()
    broken = runtime_from_dict(
        network_config(address, level(1, daemon("bad", "FailingConstructor")), name="broken")
    )
    with pytest.raises(RuntimeError, match="constructor fails"):
        broken.start()
    make_runtime(network_config(address, LEVEL_2))
    assert make_client(address).request("echo@2", "free", timeout=5) == "free"


@pytest.fixture
def full_peer_level(make_runtime, make_client):
    """A front runtime whose level 2 is served by a peer where that level is full.

    Returns the front, the back, the sender under test (``Runtime.send`` of the
    front, or ``Client.send`` to the front's endpoint) and the gate's release.
    """
    back_address, front_address = endpoint(), endpoint()
    back = make_runtime(network_config(
        back_address,
        level(2, daemon("gate", "Gate", options={"name": "peer-wait"}), queue_limit=1),
        name="back",
    ))  # fmt: skip
    peer = {"endpoint": back_address, "levels": [2], **FAST_PEER}
    front = make_runtime(
        network_config(front_address, level(1, daemon("echo", "Echo")), peers=[peer], name="front")
    )
    entered, release = daemons.gate("peer-wait")
    back.send("gate@2", "busy")
    assert entered.wait(5)
    back.send("gate@2", "queued")  # queue_limit 1: the level is full now
    return front, back, make_client(front_address), release


@pytest.mark.parametrize("sender", ["runtime", "client"])
def test_a_send_that_waits_for_room_at_a_peer_returns_once_room_is_made(full_peer_level, sender):
    """send(wait=True) to a full level of a peer blocks while it is full and returns once in."""
    front, back, client, release = full_peer_level
    send = front.send if sender == "runtime" else client.send
    sent: list[str] = []
    waiting = threading.Thread(
        target=lambda: sent.append(send("gate@2", "waited", wait=True, timeout=10))
    )
    waiting.start()
    wait_until(lambda: back.statistics()[0].waiting_for_room == 1)
    assert sent == []
    release.set()
    waiting.join(5)
    assert len(sent) == 1
    assert wait_until(lambda: back.statistics()[0].daemons[0].processed == 3)
    assert front.bridge.peers[0].held_count == 0


@pytest.mark.parametrize("sender", ["runtime", "client"])
def test_a_send_that_waits_for_room_at_a_peer_is_rejected_when_none_is_made(
    full_peer_level, sender
):
    """send(wait=True) to a peer's level that stays full raises Rejected once its timeout passes."""
    front, back, client, _release = full_peer_level
    send = front.send if sender == "runtime" else client.send
    started = time.monotonic()
    with pytest.raises(tierd.Rejected, match="queue full"):
        send("gate@2", "never", wait=True, timeout=0.5)
    assert time.monotonic() - started >= 0.45  # it waited, and was not refused at once
    assert back.statistics()[0].waiting_for_room == 0
    assert wait_until(lambda: front.bridge.peers[0].held_count == 0)
