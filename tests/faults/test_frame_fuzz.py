"""Fault 5: random and mutated frames at a running runtime's ROUTER."""

from __future__ import annotations

import os
import random

import msgpack
import pytest
import zmq

from tests.faults.measure import rss_bytes
from tests.network import echo_level, endpoint, network_config
from tierd.messaging._transport.codec import encode_message, encode_ping
from tierd.messaging.message import Address, Message
from tierd.testing import wait_until

pytestmark = pytest.mark.slow

FRAMES = int(os.environ.get("TIERD_FUZZ_FRAMES", "100000"))
BATCH = 500
RSS_BOUND = 64 << 20
"""Growth of the whole test process's RSS allowed over the run: caches, not leaks."""


def _seeds() -> list[bytes]:
    sender = Address("fuzzer", 0)
    return [
        encode_message(Message.notification(sender, Address("echo", 1), {"n": 1})),
        encode_message(Message.request(sender, Address("echo", 1), [1, 2])),
        encode_message(Message.notification(sender, Address("nope", 1), None)),
        encode_ping(),
        msgpack.packb({"v": 1, "t": "status", "id": "q"}),
        msgpack.packb({"v": 2, "t": "msg", "m": {}}),
    ]


def _frame(rng: random.Random, seeds: list[bytes]) -> list[bytes]:
    """One multipart frame: a seed mutated, random bytes, or random msgpack."""
    choice = rng.random()
    if choice < 0.1:
        return [rng.randbytes(rng.randrange(0, 200))]
    if choice < 0.2:
        value = {
            rng.choice(["v", "t", "m", "id", "ack", "wait"]): rng.choice(
                [1, "msg", "ping", None, [], {}, -1, 2**40, "x" * 50]
            )
            for _ in range(rng.randrange(5))
        }
        return [msgpack.packb(value)]
    if choice < 0.22:
        return [rng.choice(seeds), rng.randbytes(8)]  # too many parts
    data = bytearray(rng.choice(seeds))
    for _ in range(rng.randrange(1, 4)):
        mutation = rng.randrange(3)
        position = rng.randrange(len(data)) if data else 0
        if mutation == 0 and data:
            data[position] = rng.randrange(256)
        elif mutation == 1:
            del data[position : position + rng.randrange(1, 8)]
        else:
            data[position:position] = rng.randbytes(rng.randrange(1, 8))
    return [bytes(data)]


def test_random_and_mutated_frames_never_stop_the_runtime(make_runtime):
    """Fault: 100,000 random and mutated frames (seeded) from one DEALER, read in batches.

    Load: as fast as one client sends, 500 frames at a time.
    Nothing lost: the ROUTER's handler saw every frame, and each one is
    counted exactly once as rejected (by reason), accepted, a duplicate,
    refused (a valid message for no one) or a query; the runtime still
    answers a request; RSS grew by less than 64 MiB.
    """
    address = endpoint()
    rt = make_runtime(network_config(address, echo_level(1)))
    rng = random.Random(20_260_106)
    seeds = _seeds()
    context = zmq.Context()
    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(address)
    before = rss_bytes()
    try:
        for start in range(0, FRAMES, BATCH):
            for _ in range(min(BATCH, FRAMES - start)):
                dealer.send_multipart(_frame(rng, seeds))
            while dealer.poll(0):  # read what came back, so nothing piles up anywhere
                dealer.recv()
        inbound = rt.bridge.inbound
        wait_until(lambda: inbound.received == FRAMES, timeout=60)
        while dealer.poll(200):
            dealer.recv()
    finally:
        dealer.close()
        context.term()
    grown = rss_bytes() - before
    rejected = sum(rt.network_statistics().rejected_frames.values())
    counted = rejected + inbound.accepted + inbound.duplicates + inbound.refused + inbound.queries
    assert counted == inbound.received == FRAMES
    assert rejected > FRAMES // 2
    assert grown < RSS_BOUND, f"RSS grew by {grown >> 20} MiB"
    assert rt.request("echo@1", "still here", timeout=5) == "still here"
