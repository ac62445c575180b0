"""Delayed messages end to end: `send(delay=)`, `tierd send --delay`, the wire, a restart."""

from __future__ import annotations

import time

import pytest

import tierd
from tests.network import endpoint, network_config
from tests.processes import run_tierd
from tests.topology import daemon, level
from tierd.messaging._transport.codec import DecodeError, decode, encode_message
from tierd.messaging.message import MAX_DELAY, Address, Message, not_before_of
from tierd.testing import runtime_from_dict, wait_until

pytestmark = pytest.mark.timeout(30)


def arrivals(rt_or_client: tierd.Runtime | tierd.Client, target: str = "arrivals@1") -> list:
    return rt_or_client.request(target, {"op": "dump"}, timeout=5)


def test_a_delay_is_checked_before_anything_is_sent():
    now = 1_000.0
    assert not_before_of(None, None, now) is None
    assert not_before_of(0, None, now) is None  # no delay: at once
    assert not_before_of(2.5, None, now) == 1_002.5
    assert not_before_of(None, 999.0, now) is None  # a time already past: at once
    assert not_before_of(None, 1_010.0, now) == 1_010.0
    for bad in (-1, float("nan"), float("inf"), MAX_DELAY + 1, "5", True):
        with pytest.raises(ValueError, match="delay must be a number of seconds from 0 to"):
            not_before_of(bad, None, now)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not_before must be an epoch time"):
        not_before_of(None, now + MAX_DELAY + 1, now)
    with pytest.raises(ValueError, match="give delay or not_before, not both"):
        not_before_of(1, now + 1, now)


def test_the_wire_carries_not_before_and_refuses_one_absurdly_far_off():
    sender, recipient = Address("client-1", 0), Address("arrivals", 1)
    later = Message.notification(sender, recipient, "x", not_before=time.time() + 60)
    assert decode(encode_message(later)).message.not_before == later.not_before  # type: ignore[union-attr]
    plain = Message.notification(sender, recipient, "x")
    assert decode(encode_message(plain)).message.not_before is None  # type: ignore[union-attr]
    for absurd in (time.time() + MAX_DELAY + 3600, -5.0):
        frame = encode_message(plain.replace(not_before=absurd))
        with pytest.raises(DecodeError, match="not_before"):
            decode(frame)


@pytest.fixture
def served(make_runtime):
    address = endpoint()
    rt = make_runtime(network_config(address, level(1, daemon("arrivals", "Arrivals"))))
    return rt, address


def test_a_client_send_with_a_delay_arrives_no_earlier(served):
    _, address = served
    with tierd.Client(address) as client:
        sent_at = time.time()
        client.send("arrivals@1", "later", delay=0.5)
        client.send("arrivals@1", "now")
        wait_until(lambda: len(arrivals(client)) == 2, timeout=10)
        (first, _), (second, arrived) = arrivals(client)
    assert (first, second) == ("now", "later")
    assert arrived >= sent_at + 0.5


def test_a_delayed_message_can_be_cancelled_and_is_counted_meanwhile(served):
    rt, address = served
    message_id = rt.send("arrivals@1", "never", delay=60)
    assert [s.delayed for s in rt.statistics()] == [1]
    assert 'tierd_messages_delayed{level="1"} 1.0' in rt.metrics.exposition().decode()
    status = run_tierd("status", "--endpoint", address)
    assert "level 1: queued 0, delayed 1, " in status.stdout, status.stderr
    assert rt.cancel(message_id)
    assert [s.delayed for s in rt.statistics()] == [0]
    assert arrivals(rt) == []


def test_tierd_send_delay_from_the_command_line(served):
    rt, address = served
    sent_at = time.time()
    done = run_tierd("send", "arrivals@1", '"shell"', "--delay", "0.5", "--endpoint", address)
    assert done.returncode == 0, done.stderr
    wait_until(lambda: arrivals(rt), timeout=10)
    [[payload, arrived]] = arrivals(rt)
    assert payload == "shell"
    assert arrived >= sent_at + 0.5


@pytest.mark.parametrize(
    ("delay", "problem"),
    [("-1", "not a duration"), ("8d", "more than 604800 s (7 days)"), ("soon", "not a duration")],
)
def test_tierd_send_refuses_a_bad_delay_in_one_line(delay, problem):
    done = run_tierd("send", "arrivals@1", "{}", "--delay", delay)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert problem in done.stderr
    assert "argument --delay" in done.stderr


def test_a_delayed_message_on_a_durable_level_survives_a_restart_and_is_not_early(tmp_path):
    config = {
        "runtime": {"name": "delays", "data_dir": str(tmp_path), "sweep_interval": 0.02},
        "levels": [level(1, daemon("arrivals", "Arrivals"), durable=True)],
    }
    first = runtime_from_dict(config)
    first.start()
    sent_at = time.time()
    first.send("arrivals@1", "kept", delay=2.0)
    first.stop(grace_period=0)
    with runtime_from_dict(config) as second:
        wait_until(lambda: arrivals(second), timeout=10)
        [[payload, arrived]] = arrivals(second)
    assert payload == "kept"
    assert arrived >= sent_at + 2.0
