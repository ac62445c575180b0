"""Fault 2: a daemon that crashes on one message in ten, under load."""

from __future__ import annotations

import pytest

from tests import daemons
from tests.topology import daemon, level
from tierd.testing import wait_until

pytestmark = pytest.mark.slow

MESSAGES = 1000
POISON_AFTER = 3


def test_one_message_in_ten_crashes_its_daemon(make_runtime):
    """Fault: every tenth message raises ValueError in its handler (retryable, max 5 attempts).

    ValueError restarts the daemon (``supervision.restart``), so each raise is a crash.

    Load: 1,000 notifications sent as fast as one thread can, to one daemon.
    Nothing lost: handled (900) + dead-lettered as poison (100, each after
    exactly poison_after = 3 deliveries) == sent, exactly; every crash is one
    restart, and restarts stay within the policy's max_restarts.
    """
    daemons.TenthCrasher.handled.pop("load", None)
    retry = {"max_attempts": 5, "initial_delay": 0.001, "multiplier": 1.0, "on": ["ValueError"]}
    restart = {"initial_delay": 0.001, "multiplier": 1.0, "max_restarts": 1000, "window": 600}
    rt = make_runtime(
        {
            "levels": [
                level(
                    1,
                    daemon(
                        "crashy", "TenthCrasher", options={"name": "load"}, retry=retry,
                        restart=restart, supervision={"restart": ["ValueError"]},
                        poison_after=POISON_AFTER,
                    ),
                )
            ]
        },
        sweep_interval=0.002,
    )  # fmt: skip
    sent = [rt.send("crashy@1", n) for n in range(MESSAGES)]
    poison = MESSAGES // 10

    def settled() -> bool:
        stats = rt.statistics()[0]
        return daemons.TenthCrasher.handled.get("load", 0) + stats.dead_letters.get(
            "poison", 0
        ) == len(sent)

    wait_until(settled, timeout=60, interval=0.05)
    stats = rt.statistics()[0]
    handled = daemons.TenthCrasher.handled["load"]
    assert (handled, stats.dead_letters) == (MESSAGES - poison, {"poison": poison})
    assert handled + stats.dead_letters["poison"] == len(sent)
    letters = rt.dead_letters(1)
    assert sorted(letter.message.payload for letter in letters) == list(range(0, MESSAGES, 10))
    assert {letter.message.attempts for letter in letters} == {POISON_AFTER}
    crashy = stats.daemons[0]
    assert crashy.errors == poison * POISON_AFTER
    assert crashy.restarts == crashy.errors <= restart["max_restarts"]
    assert stats.retries == poison * (POISON_AFTER - 1)
    assert not crashy.given_up
