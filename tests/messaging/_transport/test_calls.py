"""`Calls`, the client side of the wire without sockets: frames built, calls settled."""

from __future__ import annotations

import pytest

import tierd
from tierd.errors import to_payload
from tierd.messaging._transport import codec
from tierd.messaging._transport.calls import Calls, Window
from tierd.messaging.message import Address


def _calls() -> Calls:
    return Calls(Address("client-x", 0))


def _sent(data: bytes) -> codec.MessageFrame:
    frame = codec.decode(data)
    assert isinstance(frame, codec.MessageFrame)
    return frame


def test_a_send_is_settled_by_its_ack_and_a_request_by_its_reply():
    """Each call settles with the frame that names its id, and leaves the pending table."""
    calls = _calls()
    note = calls.send("recorder@1", 1, priority="high", timeout=30, ack_timeout=5)
    ask = calls.request("echo@2", {"x": 1}, timeout=5, priority="normal")
    assert set(calls.pending) == {note.key, ask.key}
    request = _sent(ask.data)
    assert request.wants_ack is False
    calls.received(codec.encode_message(request.message.reply_to({"x": 1})))
    calls.received(codec.encode_ack(note.key))
    assert note.outcome() == note.key
    assert ask.outcome() == {"x": 1}
    assert calls.pending == {}


def test_an_error_reply_and_an_error_frame_raise_the_callers_error_type():
    """Errors come back as the tierd types Client users already catch."""
    calls = _calls()
    ask = calls.request("crasher@2", None, timeout=5, priority="normal")
    note = calls.send("nope@1", None, priority="normal", timeout=30, ack_timeout=5)
    reply = _sent(ask.data).message.reply_to(
        to_payload(tierd.RemoteError("crasher@2", "RuntimeError", "boom")), status="error"
    )
    calls.received(codec.encode_message(reply))
    calls.received(codec.encode_error(note.key, to_payload(tierd.UnknownRecipient("nope@1"))))
    with pytest.raises(tierd.RemoteError, match="RuntimeError"):
        ask.outcome()
    with pytest.raises(tierd.UnknownRecipient):
        note.outcome()


def test_an_acks_frame_settles_many_sends_and_a_window_counts_them():
    """One batched confirm settles every send it names; the window knows how many are left."""
    calls = _calls()
    window = Window(4)
    options = {"priority": "normal", "timeout": 30, "ack_timeout": 5}
    sends = [window.build(calls, ("recorder@1", n), **options) for n in range(4)]
    assert window.full
    assert _sent(sends[0].data).batch is True
    calls.received(codec.encode_acks([call.key for call in sends[:3]]))
    assert window.unconfirmed == 1
    assert not window.full
    calls.received(codec.encode_error(sends[3].key, to_payload(tierd.Rejected("queue full"))))
    assert window.unconfirmed == 0
    with pytest.raises(tierd.BatchRejected) as refused:
        window.outcome()
    assert refused.value.ids == [call.key for call in sends]
    [item] = refused.value.refused
    assert (item.index, item.message_id, str(item.error)) == (3, sends[3].key, "queue full")
    assert isinstance(refused.value, tierd.Rejected)


def test_a_forgotten_call_ignores_its_late_answer():
    """A timed-out or cancelled call is out of the table; its late reply changes nothing."""
    calls = _calls()
    ask = calls.request("echo@2", 1, timeout=5, priority="normal")
    calls.forget(ask)
    calls.received(codec.encode_message(_sent(ask.data).message.reply_to(1)))
    assert not ask.done
    assert calls.pending == {}
    assert calls.heard == 1


def test_status_control_and_ping_are_settled_by_their_answers():
    """Queries settle by their query id, pings by any pong."""
    calls = _calls()
    status = calls.status("tcp://x", 5)
    control = calls.control("cancel", {"id": "m"}, "tcp://x", 5)
    ping = calls.ping()
    calls.received(codec.encode_status_reply(status.key, {"levels": []}))
    calls.received(codec.encode_control_reply(control.key, result=True))
    calls.received(codec.encode_pong())
    assert status.outcome() == {"levels": []}
    assert control.outcome() is True
    assert ping.done


def test_an_error_without_an_id_settles_the_one_call_in_flight_only():
    """A frame refused before its id was read can only be blamed when one call is waiting."""
    calls = _calls()
    first = calls.request("echo@2", 1, timeout=5, priority="normal")
    second = calls.request("echo@2", 2, timeout=5, priority="normal")
    error = codec.encode_error(None, to_payload(tierd.Rejected("frame refused")))
    calls.received(error)
    assert not first.done
    assert not second.done
    calls.forget(second)
    calls.received(error)
    with pytest.raises(tierd.Rejected):
        first.outcome()


def test_a_window_that_gives_up_fails_the_unconfirmed_and_the_unsent():
    """Silence fails what is in flight with RequestTimeout and what was never sent with Rejected."""
    calls = _calls()
    window = Window(10)
    options = {"priority": "normal", "timeout": 30, "ack_timeout": 5}
    first = window.build(calls, ("recorder@1", 1), **options)
    assert window.build(calls, ("bad address", 2), **options) is None
    window.give_up(calls, 5.0, rest=iter([("recorder@1", 3)]))
    with pytest.raises(tierd.BatchRejected) as refused:
        window.outcome()
    kinds = [type(item.error) for item in refused.value.refused]
    assert kinds == [tierd.RequestTimeout, tierd.Rejected, tierd.Rejected]
    assert refused.value.ids == [first.key, "", ""]
    assert calls.pending == {}
