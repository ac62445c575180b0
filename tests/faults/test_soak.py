"""Fault 7: a bounded soak: 8 clients at a steady rate."""

from __future__ import annotations

import os
import threading
import time

import pytest

import tierd
from tests.faults.measure import percentile, rss_bytes
from tests.network import echo_level, endpoint, network_config
from tierd.testing import wait_until

pytestmark = pytest.mark.slow

DURATION = float(os.environ.get("TIERD_SOAK_SECONDS", "120" if os.environ.get("CI") else "20"))
"""Seconds of load: the full 2 minutes in CI (``CI`` set), 20 in a local run;
``TIERD_SOAK_SECONDS`` overrides both."""
CLIENTS = 8
RATE = 100
"""Requests per second per client."""
RSS_BOUND = 32 << 20
"""RSS growth allowed between the end of the warm-up and the end of the soak."""


@pytest.mark.timeout(DURATION + 60)
def test_eight_clients_at_a_steady_rate(make_runtime, record_property):
    """Fault: none; the load itself, sustained: 8 clients x 100 requests/s to echo@1.

    Nothing lost: every request is answered with its own payload (no error,
    no timeout): answered == sent, exactly; RSS grows by less than 32 MiB
    after the first quarter (warm-up); the p99 latency is reported at the end of the run.
    """
    address = endpoint()
    rt = make_runtime(network_config(address, echo_level(1)))
    latencies: list[list[float]] = [[] for _ in range(CLIENTS)]
    errors: list[BaseException] = []
    stop_at = time.monotonic() + DURATION

    def client_loop(index: int) -> None:
        with tierd.Client(address) as client:
            next_at = time.monotonic()
            n = 0
            while next_at < stop_at:
                started = time.monotonic()
                try:
                    assert client.request("echo@1", [index, n], timeout=5) == [index, n]
                except (tierd.TierdError, AssertionError) as error:
                    errors.append(error)
                latencies[index].append(time.monotonic() - started)
                n += 1
                next_at += 1 / RATE
                time.sleep(max(0.0, next_at - time.monotonic()))  # the load's own pacing

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    time.sleep(DURATION / 4)  # warm-up: caches and pools fill first
    warm = rss_bytes()
    for thread in threads:
        thread.join(DURATION + 30)
    grown = rss_bytes() - warm
    sent = sum(len(samples) for samples in latencies)
    everything = [sample for samples in latencies for sample in samples]
    p50, p99 = percentile(everything, 0.50), percentile(everything, 0.99)
    print(
        f"\nsoak: {DURATION:g}s, {CLIENTS} clients, {sent} requests, "
        f"p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, RSS +{grown / 2**20:.1f} MiB"
    )
    for name, value in [
        ("seconds", DURATION), ("requests", sent), ("p50_ms", round(p50 * 1000, 2)),
        ("p99_ms", round(p99 * 1000, 2)), ("rss_growth_mib", round(grown / 2**20, 1)),
    ]:  # fmt: skip
        record_property(name, value)  # shown at the end of the run by tests/conftest.py
    assert errors == []
    assert sent >= CLIENTS * RATE * DURATION * 0.8
    wait_until(lambda: rt.statistics()[0].completed["ok"] == sent)
    assert grown < RSS_BOUND, f"RSS grew by {grown >> 20} MiB"
