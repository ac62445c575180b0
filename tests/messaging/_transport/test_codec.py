"""The wire codec: round trips, limits, versions and validation."""

from __future__ import annotations

import msgpack
import pytest

from tierd import Rejected
from tierd.messaging._transport import codec
from tierd.messaging.message import Address, Message


def _request(payload: object = None) -> Message:
    return Message.request(
        Address("client", 0), Address("echo", 2), payload, priority=5, timeout=2.5,
        wait_chain=("a@1", "b@2"),
    )  # fmt: skip


def _envelope(**fields: object) -> bytes:
    return msgpack.packb({"v": codec.PROTOCOL_VERSION, **fields}, use_bin_type=True)


def test_message_round_trips_every_field() -> None:
    """A message decodes to an equal message, wait_chain and trace id included."""
    original = _request({"x": [1, 2.5, "three", b"four", None, True]})
    frame = codec.decode(codec.encode_message(original))
    assert isinstance(frame, codec.MessageFrame)
    decoded = frame.message
    for field in Message.__slots__:
        assert getattr(decoded, field) == getattr(original, field), field


def test_reply_round_trips_with_its_parent() -> None:
    """A reply keeps its parent id and error status across the wire."""
    reply = _request().reply_to({"error": "Rejected"}, status="error")
    frame = codec.decode(codec.encode_message(reply))
    assert isinstance(frame, codec.MessageFrame)
    assert frame.message.parent_id == reply.parent_id
    assert frame.message.status == "error"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (codec.encode_ack("m1"), codec.AckFrame("m1")),
        (codec.encode_ping(), codec.PingFrame()),
        (codec.encode_pong(), codec.PongFrame()),
        (codec.encode_status_query("q1"), codec.StatusQuery("q1")),
        (codec.encode_status_reply("q1", {"levels": []}), codec.StatusReply("q1", {"levels": []})),
        (
            codec.encode_error(None, {"error": "Rejected"}),
            codec.ErrorFrame(None, {"error": "Rejected"}),
        ),
    ],
)
def test_control_frames_round_trip(data: bytes, expected: codec.Frame) -> None:
    """Acks, heartbeats, status frames and error frames decode to what was encoded."""
    assert codec.decode(data) == expected


def test_oversized_frame_is_refused_before_unpacking() -> None:
    """A frame over the limit is refused as oversized, whatever it contains."""
    with pytest.raises(codec.DecodeError, match="over the limit") as caught:
        codec.decode(b"\xff" * 101, max_bytes=100)
    assert caught.value.reason == "oversized"


@pytest.mark.parametrize(
    "data",
    [
        b"\xc1",  # never used in msgpack
        b"\x81",  # a map that announces one pair and has none
        b"\xdd\xff\xff\xff\xff",  # an array that announces four billion elements
        b"\x91" * 5000 + b"\x01",  # nesting deeper than the unpacker's stack
        msgpack.packb(msgpack.Timestamp(1, 2)),  # extension types are not part of the wire
        msgpack.packb({1: 2}),  # map keys must be strings
        b"\xa2\xff\xfe",  # a string that is not UTF-8
        codec.encode_ping() + b"\x00",  # trailing bytes
        msgpack.packb([1, 2]),  # not a map
        msgpack.packb({"t": "ping"}),  # no version
    ],
)
def test_malformed_frames_are_refused(data: bytes) -> None:
    """Bytes that are not exactly one bounded msgpack envelope are refused as malformed."""
    with pytest.raises(codec.DecodeError) as caught:
        codec.decode(data)
    assert caught.value.reason == "malformed"


def test_other_protocol_version_is_refused() -> None:
    """An envelope of another protocol version is refused as bad_version."""
    with pytest.raises(codec.DecodeError, match="version 99") as caught:
        codec.decode(msgpack.packb({"v": 99, "t": "ping"}))
    assert caught.value.reason == "bad_version"


def test_unknown_envelope_type_is_refused() -> None:
    """An envelope of a type this version does not know is refused as unknown_type."""
    with pytest.raises(codec.DecodeError) as caught:
        codec.decode(_envelope(t="gossip"))
    assert caught.value.reason == "unknown_type"


def test_invalid_message_is_refused_with_its_id() -> None:
    """A message that fails validation is refused as invalid, and its id is kept for the answer."""
    fields = {"id": "m1", "created_at": 1.0, "sender": "c@0", "recipient": "nope",
              "kind": "request", "priority": 99}  # fmt: skip
    with pytest.raises(codec.DecodeError, match="recipient") as caught:
        codec.decode(_envelope(t="msg", m=fields))
    assert caught.value.reason == "invalid"
    assert caught.value.message_id == "m1"


def test_new_fields_are_ignored_and_missing_ones_take_defaults() -> None:
    """A newer sender's extra fields are ignored; an older sender's missing fields get defaults."""
    fields = {"id": "m1", "created_at": 1.0, "sender": "c@0", "recipient": "echo@2",
              "kind": "notification", "priority": 10, "shiny_new_field": {"x": 1}}  # fmt: skip
    frame = codec.decode(_envelope(t="msg", m=fields, also_new=True))
    assert isinstance(frame, codec.MessageFrame)
    assert frame.message.wait_chain == ()
    assert frame.message.timeout == 30.0
    assert frame.message.trace_id == "m1"


def test_reply_without_parent_is_invalid() -> None:
    """A reply that names no request is refused as invalid."""
    fields = {"id": "m1", "created_at": 1.0, "sender": "c@0", "recipient": "echo@2",
              "kind": "reply", "priority": 10}  # fmt: skip
    with pytest.raises(codec.DecodeError, match="parent_id"):
        codec.decode(_envelope(t="msg", m=fields))


def test_encoding_refuses_what_cannot_cross() -> None:
    """A payload that is not msgpack-able, or too large, is refused with Rejected at the sender."""
    with pytest.raises(Rejected, match="not msgpack-able"):
        codec.encode_message(_request(object()))
    with pytest.raises(Rejected, match="over the limit of 1000"):
        codec.encode_message(_request("x" * 2000), max_bytes=1000)


def _valid_fields() -> dict[str, object]:
    return {
        "id": "m1", "created_at": 1.5, "sender": "client@0", "recipient": "echo@2",
        "kind": "request", "priority": 5, "payload": {"x": 1}, "parent_id": None,
        "timeout": 2.5, "trace_id": "t", "status": "pending", "attempts": 0,
        "wait_chain": ["a@1"],
    }  # fmt: skip


_VARIANTS: list[dict[str, object]] = [
    {},
    {"created_at": 7, "timeout": 60},  # ints where floats go: pydantic converts them
    {"created_at": "1.5"},
    {"created_at": True},
    {"timeout": 0.0},
    {"timeout": float("nan")},
    {"timeout": 8 * 24 * 3600.0},
    {"timeout": None},
    {"priority": 0},
    {"priority": 21},
    {"priority": 5.0},
    {"priority": True},
    {"kind": "reply"},
    {"kind": "reply", "parent_id": "p1"},
    {"kind": "other"},
    {"parent_id": ""},
    {"parent_id": "p" * 129},
    {"id": ""},
    {"id": 3},
    {"id": "i" * 129},
    {"sender": "no-level"},
    {"sender": "a@" + "1" * 300},
    {"recipient": b"echo@2"},
    {"trace_id": None},
    {"trace_id": "t" * 129},
    {"status": "bogus"},
    {"attempts": -1},
    {"attempts": 2},
    {"wait_chain": []},
    {"wait_chain": None},
    {"wait_chain": ["bad"]},
    {"wait_chain": ["a@1"] * 257},
    {"wait_chain": "a@1"},
    {"extra": "ignored"},
]


@pytest.mark.parametrize("change", _VARIANTS, ids=[repr(v)[:40] for v in _VARIANTS])
@pytest.mark.parametrize("drop", [None, "timeout", "trace_id", "wait_chain", "payload", "id"])
def test_fast_path_agrees_with_pydantic(change: dict[str, object], drop: str | None) -> None:
    """The hand-written check accepts only what WireMessage accepts, and makes the same Message."""
    fields = {**_valid_fields(), **change}
    if drop is not None:
        fields.pop(drop, None)
    fast = codec._common_message(fields)
    try:
        expected = codec.WireMessage.model_validate(fields).to_message()
    except Exception:  # noqa: BLE001 - any refusal: the fast path must not accept it
        assert fast is None
        return
    if fast is not None:  # None is allowed: pydantic then decides
        for field in Message.__slots__:
            mine, theirs = getattr(fast, field), getattr(expected, field)
            assert mine == theirs or mine != mine, field  # noqa: PLR0124 - nan
            assert type(mine) is type(theirs), field


def test_fast_path_takes_a_plain_message() -> None:
    """The common case does not go to pydantic at all."""
    assert codec._common_message(_valid_fields()) is not None


def test_a_pong_carries_the_durable_levels_and_a_bad_list_reads_as_not_said():
    """A pong's durable levels round-trip; one without them, or with junk, says nothing."""
    assert codec.decode(codec.encode_pong([3, 1])) == codec.PongFrame(durable=frozenset({1, 3}))
    assert codec.decode(codec.encode_pong()) == codec.PongFrame(durable=None)
    junk = msgpack.packb({"v": codec.PROTOCOL_VERSION, "t": "pong", "durable": ["1", 2]})
    assert codec.decode(junk) == codec.PongFrame(durable=None)


def test_a_batched_confirm_round_trips_and_bad_ones_are_refused():
    """An acks frame carries 1..MAX_ACKS_PER_FRAME ids; an empty or bad list is invalid."""
    assert codec.decode(codec.encode_acks(["a", "b"])) == codec.AcksFrame(("a", "b"))
    for ids in ([], ["x"] * (codec.MAX_ACKS_PER_FRAME + 1), [1], "abc"):
        data = msgpack.packb({"v": 1, "t": "acks", "ids": ids})
        with pytest.raises(codec.DecodeError, match="acks"):
            codec.decode(data)


def test_the_batch_flag_travels_and_defaults_to_off():
    """``batch`` is a new field with a default: older frames decode as unbatched."""
    note = Message.notification(Address("c", 0), Address("r", 1), 1)
    assert codec.decode(codec.encode_message(note, batch=True)).batch is True
    assert codec.decode(codec.encode_message(note)).batch is False
