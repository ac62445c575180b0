"""Timeouts of network clients' requests are the runtime's: counted, told, and explained."""

from __future__ import annotations

import threading

import pytest

import tierd
from tests.metrics_helpers import scrape, value
from tests.network import endpoint, free_port, network_config
from tests.topology import daemon, level
from tierd.testing import wait_until

SLOW = level(2, daemon("sleeper", "Sleeper"), daemon("echo", "Echo"))


def test_client_request_timeouts_are_counted_exactly_and_the_late_reply_is_dropped(
    make_runtime, make_client
):
    """N requests whose handler outlives them: timeouts and completed{timeout} rise by n."""
    address, metrics = endpoint(), f"127.0.0.1:{free_port()}"
    rt = make_runtime(network_config(address, SLOW, metrics=metrics))
    client = make_client(address)
    n = 3
    for handled in range(1, n + 1):
        # The runtime times the request out in the handler's hands at 0.2 s, and so does the
        # client: whichever is first says so, the runtime's "got no reply" or the client's own.
        timed_out = r"(got no reply|has it, and no reply came) within 0\.2s"
        with pytest.raises(tierd.RequestTimeout, match=timed_out):
            client.request("sleeper@2", {"seconds": 0.4}, timeout=0.2)
        # Each one times out in the handler's hands, whose reply then comes late.
        wait_until(lambda n=handled: rt.statistics()[0].late_replies == n, timeout=10)
    stats = rt.statistics()[0]
    assert stats.timeouts == n
    assert stats.completed == {"ok": 0, "error": 0, "timeout": n}
    samples = scrape(metrics)
    assert value(samples, "tierd_message_timeouts_total", level=2) == n
    assert value(samples, "tierd_messages_completed_total", level=2, outcome="timeout") == n
    assert value(samples, "tierd_messages_completed_total", level=2, outcome="ok") == 0
    assert client.request("echo@2", "still here", timeout=5) == "still here"


def test_a_timeout_with_no_runtime_says_nothing_answered(make_client):
    """Nothing listens at the endpoint: the error says so, not that a handler is slow."""
    client = make_client(endpoint())
    with pytest.raises(tierd.RequestTimeout, match="no answer at all from"):
        client.request("echo@1", 1, timeout=0.2)


def test_a_request_still_handled_at_stop_is_told_rejected(make_runtime, make_client):
    """Past the grace period, the client of a request in hand gets Rejected before exit."""
    address = endpoint()
    rt = make_runtime(network_config(address, SLOW, grace_period=0.2))
    client = make_client(address)
    outcome: dict[str, BaseException] = {}

    def ask() -> None:
        try:
            client.request("sleeper@2", {"seconds": 2}, timeout=20)
        except tierd.TierdError as error:
            outcome["error"] = error

    asker = threading.Thread(target=ask)
    asker.start()
    wait_until(lambda: rt.statistics()[0].daemons[0].state == "WORKING")
    rt.stop(grace_period=0.2)
    asker.join(5)
    assert not asker.is_alive()
    assert isinstance(outcome["error"], tierd.Rejected)
    assert "runtime stopped" in str(outcome["error"])


def test_refusals_for_an_unknown_recipient_are_counted(make_runtime, make_client):
    """An unknown daemon counts on its level; a level no one serves on level="none"."""
    address, metrics = endpoint(), f"127.0.0.1:{free_port()}"
    make_runtime(network_config(address, SLOW, metrics=metrics))
    client = make_client(address)
    for target in ("nobody@2", "nobody@2", "echo@9"):
        with pytest.raises(tierd.UnknownRecipient):
            client.send(target, 1)
    samples = scrape(metrics)
    rejected = "tierd_messages_rejected_total"
    assert value(samples, rejected, level=2, reason="unknown_recipient") == 2
    assert value(samples, rejected, level="none", reason="unknown_recipient") == 1
