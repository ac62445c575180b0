"""Fault 6: a burst of sends at a level whose queue is full."""

from __future__ import annotations

import pytest

import tierd
from tests import daemons
from tests.faults.measure import rss_bytes
from tests.network import endpoint, network_config
from tests.topology import daemon, level
from tierd.testing import wait_until

pytestmark = pytest.mark.slow

LIMIT = 1000
BURST = 20_000
RSS_BOUND = 32 << 20


def test_a_burst_beyond_the_queue_limit_is_refused_explicitly(make_runtime, make_client):
    """Fault: the only daemon is stuck while 20,000 notifications arrive (queue_limit 1,000).

    Load: one client sends the burst as fast as it can, 1 KiB payloads.
    Nothing lost: every send either returned an id (accepted) or raised
    Rejected('queue full'); accepted (1,000) + refused (19,000) == sent; the
    level counted exactly the refusals; once released, every accepted message
    is handled; RSS grew by less than 32 MiB (refused messages are not kept).
    """
    address = endpoint()
    rt = make_runtime(
        network_config(
            address, level(1, daemon("gate", "Gate", options={"name": "burst"}), queue_limit=LIMIT)
        )
    )
    entered, release = daemons.gate("burst")
    client = make_client(address)
    client.send("gate@1", "first")
    assert entered.wait(5)
    before = rss_bytes()
    accepted, reasons = 0, set()
    for n in range(BURST):
        try:
            client.send("gate@1", {"n": n, "pad": "x" * 1024})
            accepted += 1
        except tierd.Rejected as error:
            reasons.add(error.reason)
    grown = rss_bytes() - before
    refused = BURST - accepted
    assert reasons == {"queue full"}
    assert (accepted, refused) == (LIMIT, BURST - LIMIT)
    stats = rt.statistics()[0]
    assert (stats.queued, stats.rejected, stats.dead_letters) == (
        LIMIT,
        {"queue_full": refused},
        {},
    )
    assert grown < RSS_BOUND, f"RSS grew by {grown >> 20} MiB"
    release.set()
    wait_until(lambda: rt.statistics()[0].daemons[0].processed == accepted + 1, timeout=30)
