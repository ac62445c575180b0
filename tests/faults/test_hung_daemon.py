"""Fault 3: a daemon that hangs forever in its handler."""

from __future__ import annotations

import threading
import time

import pytest

import tierd
from tests import daemons
from tests.topology import daemon, level

pytestmark = pytest.mark.slow

HUNG_REQUESTS = 5
SERVED_REQUESTS = 500
TIMEOUT = 0.5
LATE = 1.0
"""How far past its timeout a request may fail: sweep intervals and thread wake-ups,
with room for a loaded 2-core CI machine (0.4 s late was seen under load)."""


def test_a_hung_daemon_times_out_its_requests_and_the_level_keeps_serving(make_runtime):
    """Fault: ``hang@1`` never returns from its first message.

    Load: 5 requests to the hung daemon (timeout 0.5 s) from 5 threads, while
    one thread makes 500 requests to ``echo@1`` on the same level.
    Nothing lost: the 5 hung requests each raise RequestTimeout no later than
    1 s after their timeout (the first while being handled, the other four
    expired from the queue and dead-lettered), and all 500 echo requests are
    answered: 5 timeouts + 500 replies == 505 sent, exactly.
    """
    rt = make_runtime(
        {"levels": [level(1, daemon("hang", "Hang", options={"name": "hung"}),
                          daemon("echo", "Echo"))]}
    )  # fmt: skip
    entered, _release = daemons.gate("hung")
    outcomes: list[tuple[str, float]] = []

    def ask_hung() -> None:
        started = time.monotonic()
        try:
            rt.request("hang@1", None, timeout=TIMEOUT)
            outcomes.append(("reply", time.monotonic() - started))
        except tierd.RequestTimeout:
            outcomes.append(("timeout", time.monotonic() - started))

    callers = [threading.Thread(target=ask_hung) for _ in range(HUNG_REQUESTS)]
    for caller in callers:
        caller.start()
    assert entered.wait(5)
    replies = [rt.request("echo@1", n, timeout=5) for n in range(SERVED_REQUESTS)]
    for caller in callers:
        caller.join(5)
    assert replies == list(range(SERVED_REQUESTS))
    assert [kind for kind, _ in outcomes] == ["timeout"] * HUNG_REQUESTS
    assert all(TIMEOUT * 0.9 <= waited <= TIMEOUT + LATE for _, waited in outcomes), outcomes
    stats = rt.statistics()[0]
    assert stats.dead_letters == {"expired": HUNG_REQUESTS - 1}
    assert stats.daemons[1].processed == SERVED_REQUESTS
    assert stats.daemons[0].state == "WORKING"  # still hung: tierd does not kill threads
