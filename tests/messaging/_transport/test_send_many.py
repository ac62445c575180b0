"""`Client.send_many` against a runtime: pipelined, every message confirmed, refusals by item."""

from __future__ import annotations

import io

import pytest

import tierd
from tests.network import FAST_PEER, echo_level, endpoint, network_config
from tests.topology import daemon, level
from tierd.cli import main


def _dump(client: tierd.Client, target: str = "recorder@1") -> list[object] | None:
    """What the recorder has, or None while its level is too full to take the question."""
    try:
        return list(client.request(target, {"op": "dump"}, timeout=30))
    except tierd.Rejected:
        return None


@pytest.mark.slow
def test_send_many_of_100000_messages_delivers_each_once_in_order(make_runtime, make_client):
    """100,000 pipelined sends: every id returned, every message handled exactly once, in order."""
    address = endpoint()
    make_runtime(network_config(address, echo_level(1), max_message_bytes=4 << 20))
    client = make_client(address, max_message_bytes=4 << 20)
    count = 100_000
    ids = client.send_many((("recorder@1", n) for n in range(count)), window=2000)
    assert len(ids) == len(set(ids)) == count
    assert tierd.testing.wait_until(
        lambda: client.request("recorder@1", {"op": "count"}, timeout=30) == count, timeout=60
    )
    assert _dump(client) == list(range(count))


def test_send_many_keeps_order_per_priority_and_returns_ids_in_item_order(
    make_runtime, make_client
):
    """A small window still confirms everything; the level handles the items in order."""
    address = endpoint()
    make_runtime(network_config(address, echo_level(1)))
    client = make_client(address)
    ids = client.send_many((("recorder@1", n) for n in range(500)), priority="high", window=7)
    assert len(set(ids)) == 500
    # Accepted means queued in order: a dump behind them (normal comes after high) sees all.
    assert _dump(client) == list(range(500))


def test_a_refused_middle_item_is_reported_by_index_and_nothing_else_is_lost(
    make_runtime, make_client
):
    """An unknown recipient in the middle is refused alone; every other item is handled."""
    address = endpoint()
    make_runtime(network_config(address, echo_level(1)))
    client = make_client(address)
    items = [("recorder@1", n) for n in range(10)]
    items[4] = ("nobody@1", 4)
    items[7] = ("not an address", 7)
    with pytest.raises(tierd.BatchRejected) as refused:
        client.send_many(items)
    assert [item.index for item in refused.value.refused] == [4, 7]
    assert isinstance(refused.value.refused[0].error, tierd.UnknownRecipient)
    assert isinstance(refused.value.refused[1].error, tierd.Rejected)
    assert refused.value.refused[0].message_id == refused.value.ids[4]
    assert _dump(client) == [0, 1, 2, 3, 5, 6, 8, 9]


def test_queue_full_refusals_name_exactly_the_items_that_were_not_kept(make_runtime, make_client):
    """With a tiny queue, each refused item is reported and each accepted one is handled."""
    address = endpoint()
    slow = daemon("recorder", "Recorder", options={"delay": 0.05})
    make_runtime(network_config(address, level(1, slow, queue_limit=3)))
    client = make_client(address)
    with pytest.raises(tierd.BatchRejected) as refused:
        client.send_many(("recorder@1", n) for n in range(30))
    lost = {item.index for item in refused.value.refused}
    assert lost
    assert all(str(item.error) == "queue full" for item in refused.value.refused)
    kept = [n for n in range(30) if n not in lost]
    assert tierd.testing.wait_until(lambda: _dump(client) == kept, timeout=10)
    assert _dump(client) == kept


def test_send_many_to_no_runtime_reports_every_item_unconfirmed(make_client):
    """Without a runtime nothing is confirmed: each item is refused with RequestTimeout."""
    client = make_client(endpoint(), ack_timeout=0.3)
    with pytest.raises(tierd.BatchRejected) as refused:
        client.send_many([("recorder@1", 1), ("recorder@1", 2)])
    assert [item.index for item in refused.value.refused] == [0, 1]
    assert all(isinstance(item.error, tierd.RequestTimeout) for item in refused.value.refused)


def test_a_bad_window_is_a_value_error(make_client):
    """A window below one is a ValueError."""
    with pytest.raises(ValueError, match="window"):
        make_client(endpoint()).send_many([], window=0)


def test_tierd_send_lines_sends_each_json_line_and_names_refused_lines(
    capsys, monkeypatch, make_runtime, make_client
):
    """``tierd send TARGET --lines`` pipelines stdin's JSON lines; a refusal names its line."""
    address = endpoint()
    make_runtime(network_config(address, echo_level(1)))
    monkeypatch.setattr("sys.stdin", io.StringIO('{"n": 1}\n\n2\n"three"\n'))
    assert main(["send", "recorder@1", "--lines", "--endpoint", address]) == 0
    ids = capsys.readouterr().out.split()
    assert len(ids) == 3
    client = make_client(address)
    assert tierd.testing.wait_until(lambda: _dump(client) == [{"n": 1}, 2, "three"])
    monkeypatch.setattr("sys.stdin", io.StringIO("1\nnot json\n"))
    assert main(["send", "recorder@1", "--lines", "--endpoint", address]) == 2
    assert "line 2 is not JSON" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("1\n"))
    assert main(["send", "nobody@1", "--lines", "--endpoint", address]) == 1
    assert "line 1: UnknownRecipient" in capsys.readouterr().err


def test_send_many_to_a_level_a_peer_serves_is_confirmed_after_the_peer_took_it(
    make_runtime, make_client
):
    """Through a front runtime to its peer's level: each message confirmed once the peer acked."""
    back_address, front_address = endpoint(), endpoint()
    make_runtime(network_config(back_address, echo_level(2), name="back"))
    peer = {"endpoint": back_address, "levels": [2], **FAST_PEER}
    make_runtime(network_config(front_address, echo_level(1), peers=[peer], name="front"))
    client = make_client(front_address)
    ids = client.send_many(("recorder@2", n) for n in range(200))
    assert len(set(ids)) == 200
    assert tierd.testing.wait_until(lambda: _dump(client, "recorder@2") == list(range(200)))
