"""docs/protocol.md, checked against a runtime by a client built from that document alone."""

from __future__ import annotations

import ast
from pathlib import Path

import msgpack
import pytest

from tests import raw_client
from tests.network import echo_level, endpoint, network_config
from tests.raw_client import RawClient
from tests.topology import daemon, level


@pytest.fixture
def raw(make_runtime):
    """A runtime with echo and recorder on level 1, a crasher on 2; a raw client connected."""
    address = endpoint()
    make_runtime(network_config(address, echo_level(1), level(2, daemon("crasher", "Crasher"))))
    client = RawClient(address)
    client.request("echo@1")  # connected, and the runtime answers
    yield client
    client.close()


def test_the_raw_client_imports_nothing_of_tierd():
    """The client code uses only pyzmq, msgpack and the standard library."""
    tree = ast.parse(Path(raw_client.__file__).read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module)])
        if alias.name
    }
    assert "tierd" not in imported
    assert "tests" not in imported


def test_a_request_is_answered_by_a_reply_and_an_acked_one_by_an_ack_first(raw):
    """§3.1: ack:false gets only the reply; without it an ack comes before the reply."""
    reply = raw.request("echo@1", {"x": 1})
    assert reply["v"] == 1
    assert reply["m"]["kind"] == "reply"
    assert reply["m"]["status"] == "done"
    assert reply["m"]["payload"] == {"x": 1}
    message = raw.message("request", "echo@1", "acked")
    raw.msg(message)
    assert raw.receive() == {"v": 1, "t": "ack", "id": message["id"]}
    assert raw.receive()["m"]["parent_id"] == message["id"]


def test_a_notification_is_acked_once_and_a_resend_is_acked_not_handled(raw):
    """§3.1 and §3.2: one ack per message; the same id again is acked and not handed on."""
    message = raw.message("notification", "recorder@1", "once")
    raw.msg(message)
    assert raw.receive() == {"v": 1, "t": "ack", "id": message["id"]}
    raw.msg(message)
    assert raw.receive() == {"v": 1, "t": "ack", "id": message["id"]}
    assert raw.request("recorder@1", {"op": "dump"})["m"]["payload"] == ["once"]


def test_batched_notifications_are_confirmed_by_acks_frames(raw):
    """§3.3: with batch, pipelined notifications are confirmed by acks frames, in order."""
    sent = [raw.message("notification", "recorder@1", n) for n in range(300)]
    for message in sent:
        raw.msg(message, batch=True)
    confirmed: list[str] = []
    frames = 0
    while len(confirmed) < len(sent):
        frame = raw.receive()
        assert frame["t"] == "acks"
        assert 1 <= len(frame["ids"]) <= 1024
        confirmed += frame["ids"]
        frames += 1
    assert confirmed == [message["id"] for message in sent]
    assert frames < len(sent)  # one frame confirmed many
    # Confirmed means queued, in order: a request behind them sees every one handled.
    assert raw.request("recorder@1", {"op": "dump"})["m"]["payload"] == list(range(300))


def test_refusals_are_error_frames_or_error_replies_with_the_documented_maps(raw):
    """§3.4 and §5: an unknown recipient, a bad message, and a crashing handler."""
    note = raw.message("notification", "nobody@1", None)
    raw.msg(note, batch=True)
    frame = raw.receive()
    assert (frame["t"], frame["id"]) == ("error", note["id"])
    assert frame["error"]["error"] == "UnknownRecipient"
    assert frame["error"]["recipient"] == "nobody@1"
    bad = raw.message("notification", "recorder@1", None, priority=99)
    raw.msg(bad)
    frame = raw.receive()
    assert (frame["t"], frame["id"], frame["error"]["error"]) == ("error", bad["id"], "Rejected")
    assert "frame refused (invalid)" in frame["error"]["text"]
    reply = raw.request("crasher@2", None)["m"]
    assert reply["status"] == "error"
    assert reply["payload"]["error"] == "RemoteError"
    assert reply["payload"]["type"] == "RuntimeError"
    assert reply["payload"]["recipient"] == "crasher@2"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (msgpack.packb({"v": 2, "t": "ping"}), "bad_version"),
        (msgpack.packb({"v": 1, "t": "teleport"}), "unknown_type"),
        (msgpack.packb([1, 2, 3]), "malformed"),
        (b"\xc1", "malformed"),
        (msgpack.packb({"v": 1, "t": "ack", "id": "x"}), "unexpected"),
    ],
)
def test_a_bad_frame_is_answered_with_its_reason_and_the_runtime_goes_on(raw, body, reason):
    """§6: every refused frame gets an error frame naming its reason; nothing stops."""
    raw.send_body(body)
    frame = raw.receive()
    assert frame["t"] == "error"
    assert frame["id"] is None
    assert f"frame refused ({reason})" in frame["error"]["text"]
    assert raw.request("echo@1", "still up")["m"]["payload"] == "still up"


def test_ping_status_and_control(raw):
    """§3.5 to §3.7: a pong, the status document, and a control operation and its error."""
    raw.send_frame({"v": 1, "t": "ping"})
    pong = raw.receive()
    assert (pong["v"], pong["t"]) == (1, "pong")
    assert all(isinstance(level, int) for level in pong.get("durable", []))
    raw.send_frame({"v": 1, "t": "status", "id": "q1"})
    frame = raw.receive()
    assert (frame["t"], frame["id"]) == ("status_reply", "q1")
    status = frame["status"]
    assert {"name", "levels", "peers", "rejected_frames"} <= status.keys()
    first = status["levels"][0]
    assert first["level"] == 1
    assert {d["daemon"] for d in first["daemons"]} == {"echo", "recorder"}
    assert {"state", "queued", "in_flight", "processed", "errors", "restarts"} <= (
        first["daemons"][0].keys()
    )
    raw.send_frame({"v": 1, "t": "control", "id": "q2", "op": "cancel", "args": {"id": "none"}})
    assert raw.receive() == {"v": 1, "t": "control_reply", "id": "q2", "result": False}
    raw.send_frame({"v": 1, "t": "control", "id": "q3", "op": "pause", "args": {"target": "x@9"}})
    frame = raw.receive()
    assert (frame["t"], frame["id"], frame["error"]["error"]) == ("error", "q3", "UnknownRecipient")


def test_an_oversized_frame_is_refused_before_it_is_read(raw):
    """§6: a body over max_message_bytes (1 MiB by default) is refused as oversized."""
    raw.send_body(b"\x00" * ((1 << 20) + 1))
    frame = raw.receive()
    assert frame["t"] == "error"
    assert "frame refused (oversized)" in frame["error"]["text"]
