"""Faults from another client: reusing a victim's message ids, and claiming its routing id.

A sender is who its connection says it is. Two attacks, tried from the outside
with raw ZeroMQ sockets against a `tierd run` subprocess (ids) or a runtime
in this process (routing ids), each with exact counts.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest
import zmq

import tierd
from tests.network import endpoint, to_toml
from tests.topology import daemon, level
from tierd.messaging._transport import codec
from tierd.messaging.message import Address, Message

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

STOLEN = 40
"""Ids of the victim's the attacker sends first."""
VICTIM_SENDS = 20
REQUESTS = 100


class RawClient:
    """A DEALER that speaks the wire by hand, with the routing id it chooses."""

    def __init__(self, address: str, routing_id: bytes | None = None) -> None:
        self.context: zmq.Context[Any] = zmq.Context()
        self.socket: zmq.Socket[Any] = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        if routing_id is not None:
            self.socket.setsockopt(zmq.ROUTING_ID, routing_id)
        self.socket.connect(address)

    def send(self, frame: bytes) -> None:
        self.socket.send(frame)

    def answers(self, timeout: float) -> list[codec.Frame]:
        """Every frame that arrives within ``timeout`` seconds of the first wait."""
        frames = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0 and self.socket.poll(left * 1000):
            frames.append(codec.decode(self.socket.recv()))
        return frames

    def close(self) -> None:
        self.socket.close(linger=0)
        self.context.term()


def forged(message_id: str, to: str) -> bytes:
    """A notification with an id of the attacker's choosing (made without `new_id`)."""
    message = Message(
        id=message_id, created_at=time.time(), sender=Address("attacker", 0),
        recipient=Address.parse(to), kind="notification", priority=10, payload="forged",
    )  # fmt: skip
    return codec.encode_message(message)


def next_ids(seen: str, count: int) -> list[str]:
    """The ids one process makes after ``seen``: its random prefix, then a counter."""
    prefix, counter = seen[:16], int(seen[16:], 16)
    return [f"{prefix}{counter + n:016x}" for n in range(1, count + 1)]


def write_config(tmp_path: Path, address: str) -> Path:
    config = {
        "runtime": {"name": "ids", "endpoint": address, "metrics": "", "log_level": "warning"},
        "levels": [level(1, daemon("recorder", "Recorder"), daemon("sink", "Recorder"))],
    }
    path = tmp_path / "ids.toml"
    path.write_text(to_toml(config))
    return path


@pytest.mark.timeout(60)
def test_another_client_reusing_a_victims_ids_drops_none_of_its_messages(tmp_path, tierd_cli):
    """Id reuse: 40 forged notifications with a victim's next ids; all 21 of its sends arrive.

    The fault: after the victim's first send, an attacker predicts its next
    40 ids (a process's ids are a prefix and a counter) and sends
    notifications with them to another daemon first. The load: then the
    victim sends 20 more. Exact counts: the victim's recorder handles 1 + 20,
    the attacker's sink 40.
    """
    address = endpoint()
    runtime = tierd_cli("run", str(write_config(tmp_path, address)))
    runtime.wait_for_line(r"running", timeout=30)
    attacker = RawClient(address)
    try:
        with tierd.Client(address) as victim:
            first = victim.send("recorder@1", 0)
            stolen = next_ids(first, STOLEN)
            for message_id in stolen:
                attacker.send(forged(message_id, "sink@1"))
            acks = [f for f in attacker.answers(5.0) if isinstance(f, codec.AckFrame)]
            assert len(acks) == STOLEN
            sent = [victim.send("recorder@1", n) for n in range(1, VICTIM_SENDS + 1)]
            assert set(sent) <= set(stolen), "the attack must reuse the victim's real ids"
            delivered = victim.request("recorder@1", {"op": "count"}, timeout=5)
            forged_delivered = victim.request("sink@1", {"op": "count"}, timeout=5)
    finally:
        attacker.close()
        runtime.finish()
    print(
        f"\nvictim: {1 + VICTIM_SENDS} sent, {delivered} delivered; "
        f"attacker: {STOLEN} forged, {forged_delivered} delivered"
    )
    assert delivered == 1 + VICTIM_SENDS, "a victim's message vanished"
    assert forged_delivered == STOLEN


@pytest.mark.timeout(60)
def test_a_second_connection_with_a_clients_routing_id_cannot_take_it_over(make_runtime):
    """Routing-id takeover: the victim's 100 requests are all answered; the claimant gets nothing.

    The fault: while a `tierd.Client` is connected, two raw DEALERs connect,
    one with the name the victim's messages show (``client-<hex>``, the
    attack that worked before) and one with the victim's secret routing id
    itself (the worst case: it leaked). Each pings. The load: the victim
    then makes 100 requests. Exact counts: 100 replies reach the victim;
    the name-claimant is just another client (1 pong); the routing-id
    claimant gets 0 frames: the runtime keeps the first connection.
    """
    address = endpoint()
    make_runtime(
        {
            "runtime": {"name": "takeover", "endpoint": address, "metrics": ""},
            "levels": [level(1, daemon("echo", "Echo"))],
        }
    )
    with tierd.Client(address) as victim:
        assert victim.request("echo@1", "before", timeout=5) == "before"
        secret = victim._socket.getsockopt(zmq.ROUTING_ID)  # the worst case: it leaked
        by_name = RawClient(address, victim.address.daemon.encode())
        by_secret = RawClient(address, secret)
        try:
            by_name.send(codec.encode_ping())
            by_secret.send(codec.encode_ping())
            name_answers = by_name.answers(1.0)
            replies = [victim.request("echo@1", n, timeout=5) for n in range(REQUESTS)]
            secret_answers = by_secret.answers(1.0)
        finally:
            by_name.close()
            by_secret.close()
    print(
        f"\nvictim: {len(replies)} of {REQUESTS} answered; "
        f"name claimant: {len(name_answers)} frames; routing-id claimant: {len(secret_answers)}"
    )
    assert replies == list(range(REQUESTS))
    assert [type(frame) for frame in name_answers] == [codec.PongFrame]
    assert secret_answers == [], "a second connection took the victim's routing id"
