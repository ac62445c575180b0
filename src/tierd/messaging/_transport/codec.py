"""The wire codec: msgpack envelopes with a protocol version, decoded defensively.

Every frame on the wire is one msgpack map, an *envelope*::

    {"v": 1, "t": "msg", "m": {...message fields...}}   a request, reply or notification;
                                         "ack": false asks for no ack (a client's
                                         request: its reply is the answer);
                                         "wait": true asks to wait for room in a
                                         full queue (a notification), up to its timeout;
                                         "batch": true lets the receiver confirm it
                                         in an "acks" frame with others
    {"v": 1, "t": "ack", "id": "..."}                    the receiver accepted message id
    {"v": 1, "t": "acks", "ids": ["...", ...]}          the receiver accepted every one of ids
    {"v": 1, "t": "error", "id": "..." | None, "error": {...}}
                                                         a frame or notification was refused
    {"v": 1, "t": "ping"} / {"v": 1, "t": "pong"}       peer heartbeats; a pong may carry
                                         "durable": [levels], the levels whose
                                         acks come only after a journal commit
    {"v": 1, "t": "status", "id": "..."}                 a client asks for the status
    {"v": 1, "t": "status_reply", "id": "...", "status": {...}}
    {"v": 1, "t": "control", "id": "...", "op": "...", "args": {...}}
                                                         a client asks for an operation
                                                         (cancel, pause, dead letters...)
    {"v": 1, "t": "control_reply", "id": "...", "result": ...}

Inbound frames are untrusted. `decode` checks the size before it looks at a
byte, unpacks with msgpack's length limits (no container or string can be
longer than the frame itself, no extension types), checks the version and
validates a message with pydantic (`WireMessage`). Anything wrong raises
`DecodeError` with a short ``reason``, the label of
``tierd_rejected_frames_total``.

The wire evolves the way msgspec's schema-evolution guide describes: a new
field gets a default so that older senders still validate, unknown fields
are ignored so that newer senders are still understood, and the type of an
existing field never changes. A change that breaks either rule bumps
`PROTOCOL_VERSION`.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import msgpack
import pydantic
from pydantic import BaseModel, ConfigDict, Field

from ...errors import Rejected
from ..message import MAX_DELAY, MAX_PRIORITY, MAX_TIMEOUT, MIN_PRIORITY, Address, Message

if TYPE_CHECKING:
    from collections.abc import Iterable

PROTOCOL_VERSION: Final = 1
"""The version every envelope carries; frames with another version are refused."""

DEFAULT_MAX_MESSAGE_BYTES: Final = 1 << 20
"""The largest frame accepted or sent, unless ``runtime.max_message_bytes`` says otherwise."""

REASONS: Final = ("oversized", "malformed", "bad_version", "unknown_type", "invalid", "unexpected")
"""Why a frame is refused; the ``reason`` label of ``tierd_rejected_frames_total``."""

MAX_ACKS_PER_FRAME: Final = 1024
"""The most ids one ``acks`` frame carries; more accepted at once go in several frames."""

_MAX_ID_LENGTH: Final = 128
_MAX_WAIT_CHAIN: Final = 256
_MAX_TIMEOUT: Final = MAX_TIMEOUT
_CLOCK_SKEW: Final = 300.0
"""Seconds a sender's clock may run ahead of ours before its ``not_before`` is refused."""


class DecodeError(ValueError):
    """An inbound frame cannot be accepted.

    Attributes:
        reason: one of `REASONS`, e.g. ``"oversized"``.
        detail: what exactly is wrong, for the log and the error reply.
        message_id: the id of the message the frame carried, when it could
            be read, so that the sender can be answered about it.
    """

    def __init__(self, reason: str, detail: str, message_id: str | None = None) -> None:
        self.reason = reason
        self.detail = detail
        self.message_id = message_id
        super().__init__(f"frame refused ({reason}): {detail}")


def _check_address(value: str) -> str:
    Address.parse(value)
    return value


_AddressText = Annotated[str, Field(max_length=300), pydantic.AfterValidator(_check_address)]
_Id = Annotated[str, Field(min_length=1, max_length=_MAX_ID_LENGTH)]


class WireMessage(BaseModel):
    """A message as it crosses the wire; `to_message` turns it into a `Message`.

    Fields added in later protocol revisions must have defaults (see the module
    docstring); unknown fields are ignored.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: _Id
    created_at: float
    sender: _AddressText
    recipient: _AddressText
    kind: Literal["request", "reply", "notification"]
    priority: Annotated[int, Field(ge=MIN_PRIORITY, le=MAX_PRIORITY)]
    payload: Any = None
    parent_id: _Id | None = None
    timeout: Annotated[float, Field(gt=0, le=_MAX_TIMEOUT)] = 30.0
    trace_id: Annotated[str, Field(max_length=_MAX_ID_LENGTH)] = ""
    status: Literal["pending", "in_progress", "done", "timeout", "error", "cancelled"] = "pending"
    attempts: Annotated[int, Field(ge=0)] = 0
    wait_chain: Annotated[tuple[_AddressText, ...], Field(max_length=_MAX_WAIT_CHAIN)] = ()
    not_before: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None

    @pydantic.model_validator(mode="after")
    def _reply_has_parent(self) -> WireMessage:
        if self.kind == "reply" and self.parent_id is None:
            raise ValueError("a reply needs parent_id")
        return self

    @pydantic.field_validator("not_before")
    @classmethod
    def _not_too_late(cls, value: float | None) -> float | None:
        if value is not None and value > time.time() + MAX_DELAY + _CLOCK_SKEW:
            raise ValueError(f"more than {MAX_DELAY:g} s (7 days) from now")
        return value

    def to_message(self) -> Message:
        """The in-process `Message` this wire message describes."""
        return Message.from_fields(self.model_dump())


# -- what decode returns -------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class MessageFrame:
    """A request, reply or notification."""

    message: Message
    wants_ack: bool = True
    """Whether the sender waits for an ack; a client's request waits for its reply only."""
    wait: bool = False
    """Whether a full queue should park the message until there is room, not refuse it."""
    batch: bool = False
    """Whether the sender takes its ack inside an `AcksFrame` with others."""


@dataclasses.dataclass(frozen=True, slots=True)
class AckFrame:
    """The receiver accepted the message ``message_id``."""

    message_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class AcksFrame:
    """The receiver accepted every message in ``message_ids`` (a batched confirm)."""

    message_ids: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class ErrorFrame:
    """The receiver refused a frame; ``error`` is an `errors.to_payload` dict."""

    message_id: str | None
    error: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class PingFrame:
    """A peer's heartbeat; answer with a pong."""


@dataclasses.dataclass(frozen=True, slots=True)
class PongFrame:
    """The answer to a heartbeat."""

    durable: frozenset[int] | None = None
    """The answering runtime's durable levels; None from a runtime that does not say."""


@dataclasses.dataclass(frozen=True, slots=True)
class StatusQuery:
    """A client asks for the runtime's status."""

    query_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class StatusReply:
    """The runtime's status, answering `StatusQuery` ``query_id``."""

    query_id: str
    status: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class ControlQuery:
    """A client asks for a control operation (see `tierd._control`)."""

    query_id: str
    operation: str
    arguments: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class ControlReply:
    """The result of `ControlQuery` ``query_id``."""

    query_id: str
    result: Any


Frame = (
    MessageFrame | AckFrame | AcksFrame | ErrorFrame | PingFrame | PongFrame | StatusQuery
    | StatusReply | ControlQuery | ControlReply
)  # fmt: skip


# -- encoding ------------------------------------------------------------------


def _pack(envelope: dict[str, Any], max_bytes: int) -> bytes:
    try:
        data: bytes = msgpack.packb(envelope, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as error:
        raise Rejected(f"the payload cannot be sent: it is not msgpack-able ({error})") from error
    if len(data) > max_bytes:
        raise Rejected(
            f"the message is {len(data)} bytes, over the limit of {max_bytes}; "
            "send a smaller payload or raise runtime.max_message_bytes on both sides"
        )
    return data


def encode_message(
    message: Message,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    *,
    wants_ack: bool = True,
    wait: bool = False,
    batch: bool = False,
) -> bytes:
    """Encode a message for the wire; ``wants_ack=False`` tells the receiver not to ack it.

    ``wait=True`` asks the receiver to wait for room if the level is full;
    ``batch=True`` lets it confirm the message in an ``acks`` frame with others
    (a receiver that does not know the field acks it alone, which is as good).

    Raises:
        Rejected: the payload is not msgpack-able, or the frame is over ``max_bytes``.
    """
    envelope: dict[str, Any] = {"v": PROTOCOL_VERSION, "t": "msg", "m": message.to_fields()}
    if not wants_ack:
        envelope["ack"] = False
    if wait:
        envelope["wait"] = True
    if batch:
        envelope["batch"] = True
    return _pack(envelope, max_bytes)


def encode_ack(message_id: str) -> bytes:
    """Encode the acknowledgement of an accepted message."""
    return _pack({"v": PROTOCOL_VERSION, "t": "ack", "id": message_id}, DEFAULT_MAX_MESSAGE_BYTES)


def encode_acks(message_ids: list[str]) -> bytes:
    """Encode one confirm of many accepted messages (`MAX_ACKS_PER_FRAME` at most)."""
    envelope = {"v": PROTOCOL_VERSION, "t": "acks", "ids": message_ids}
    return _pack(envelope, DEFAULT_MAX_MESSAGE_BYTES)


def encode_error(message_id: str | None, error: dict[str, Any]) -> bytes:
    """Encode the refusal of a frame; ``error`` comes from `errors.to_payload`."""
    envelope = {"v": PROTOCOL_VERSION, "t": "error", "id": message_id, "error": error}
    return _pack(envelope, DEFAULT_MAX_MESSAGE_BYTES)


def encode_ping() -> bytes:
    """Encode a heartbeat."""
    return _pack({"v": PROTOCOL_VERSION, "t": "ping"}, DEFAULT_MAX_MESSAGE_BYTES)


def encode_pong(durable: Iterable[int] | None = None) -> bytes:
    """Encode the answer to a heartbeat, with the levels this runtime keeps durably.

    A peer acks a notification for one of them only once it is committed, and
    the forwarding side waits for that ack before it confirms the message.
    """
    envelope: dict[str, Any] = {"v": PROTOCOL_VERSION, "t": "pong"}
    if durable is not None:
        envelope["durable"] = sorted(durable)
    return _pack(envelope, DEFAULT_MAX_MESSAGE_BYTES)


def encode_status_query(query_id: str) -> bytes:
    """Encode a client's status question."""
    return _pack({"v": PROTOCOL_VERSION, "t": "status", "id": query_id}, DEFAULT_MAX_MESSAGE_BYTES)


def encode_status_reply(
    query_id: str, status: dict[str, Any], max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
) -> bytes:
    """Encode the runtime's status.

    Raises:
        Rejected: the status does not fit in ``max_bytes``.
    """
    return _pack(
        {"v": PROTOCOL_VERSION, "t": "status_reply", "id": query_id, "status": status}, max_bytes
    )


def encode_control(query_id: str, operation: str, arguments: dict[str, Any]) -> bytes:
    """Encode a client's control operation."""
    envelope = {"v": PROTOCOL_VERSION, "t": "control", "id": query_id, "op": operation}
    envelope["args"] = arguments
    return _pack(envelope, DEFAULT_MAX_MESSAGE_BYTES)


def encode_control_reply(
    query_id: str, result: Any, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
) -> bytes:
    """Encode the result of a control operation.

    Raises:
        Rejected: the result does not fit in ``max_bytes``.
    """
    envelope = {"v": PROTOCOL_VERSION, "t": "control_reply", "id": query_id, "result": result}
    return _pack(envelope, max_bytes)


# -- decoding ------------------------------------------------------------------


def unpack(data: bytes, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Any:
    """Unpack one msgpack value from untrusted bytes, within strict limits.

    Raises:
        DecodeError: ``oversized`` over ``max_bytes``, ``malformed`` when not
            exactly one msgpack value within the limits.
    """
    size = len(data)
    if size > max_bytes:
        raise DecodeError("oversized", f"frame of {size} bytes is over the limit of {max_bytes}")
    try:
        # Every length is bounded by the frame's size: a 20-byte frame cannot
        # announce a billion-element array and make the unpacker allocate it.
        return msgpack.unpackb(
            data, raw=False, use_list=True, strict_map_key=True, max_str_len=size,
            max_bin_len=size, max_array_len=size, max_map_len=size, max_ext_len=0,
        )  # fmt: skip
    except ValueError as error:  # every msgpack and UTF-8 error is a ValueError
        raise DecodeError("malformed", f"not a msgpack value: {error}") from None


def decode(data: bytes, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Frame:
    """Decode and validate one inbound frame.

    Raises:
        DecodeError: the frame is oversized, malformed, of another protocol
            version, of an unknown type, or carries an invalid message.
    """
    return decode_envelope(unpack(data, max_bytes))


def decode_envelope(envelope: Any) -> Frame:  # noqa: PLR0911, PLR0912 - one return per envelope type
    """Validate one unpacked envelope (see `decode`).

    Raises:
        DecodeError: as `decode`, but never ``oversized`` or ``malformed`` msgpack.
    """
    if not isinstance(envelope, dict):
        raise DecodeError("malformed", f"envelope is a {type(envelope).__name__}, not a map")
    version = envelope.get("v")
    if isinstance(version, bool) or not isinstance(version, int):
        raise DecodeError("malformed", "envelope has no integer protocol version 'v'")
    if version != PROTOCOL_VERSION:
        raise DecodeError(
            "bad_version",
            f"protocol version {version} is not supported (this side speaks {PROTOCOL_VERSION}); "
            "run the same tierd version on both sides",
        )
    kind = envelope.get("t")
    match kind:
        case "msg":
            return MessageFrame(
                _message(envelope.get("m")),
                wants_ack=envelope.get("ack") is not False,
                wait=envelope.get("wait") is True,
                batch=envelope.get("batch") is True,
            )
        case "ack":
            return AckFrame(_id(envelope.get("id"), "ack"))
        case "acks":
            return _acks(envelope.get("ids"))
        case "error":
            raw_id, error = envelope.get("id"), envelope.get("error")
            if not isinstance(error, dict):
                raise DecodeError("invalid", "error frame without an error map")
            return ErrorFrame(None if raw_id is None else _id(raw_id, "error"), error)
        case "ping":
            return PingFrame()
        case "pong":
            return PongFrame(_levels(envelope.get("durable")))
        case "status":
            return StatusQuery(_id(envelope.get("id"), "status"))
        case "status_reply":
            status = envelope.get("status")
            if not isinstance(status, dict):
                raise DecodeError("invalid", "status reply without a status map")
            return StatusReply(_id(envelope.get("id"), "status_reply"), status)
        case "control" | "control_reply":
            return _control(envelope)
    raise DecodeError("unknown_type", f"unknown envelope type {str(kind)[:40]!r}")


def _acks(ids: Any) -> AcksFrame:
    if type(ids) is not list or not 0 < len(ids) <= MAX_ACKS_PER_FRAME:
        raise DecodeError("invalid", f"acks frame without a list of 1..{MAX_ACKS_PER_FRAME} ids")
    for message_id in ids:
        _id(message_id, "acks")
    return AcksFrame(tuple(ids))


def reply_answer(envelope: Any) -> tuple[str, bool, Any] | None:
    """``(parent_id, is_error, payload)`` if ``envelope`` is a reply; None for anything else.

    A client's lean reading of the frame it waits for most: it needs three
    fields of a reply from the runtime it chose to connect to, not a
    validated `Message` (the runtime validates what *it* receives). Anything
    that is not plainly a reply returns None and goes through `decode`.
    """
    if type(envelope) is not dict or envelope.get("t") != "msg":
        return None
    fields = envelope.get("m")
    if envelope.get("v") != PROTOCOL_VERSION or type(fields) is not dict:
        return None
    parent_id = fields.get("parent_id")
    if fields.get("kind") != "reply" or type(parent_id) is not str:
        return None
    return parent_id, fields.get("status") == "error", fields.get("payload")


def _control(envelope: dict[str, Any]) -> ControlQuery | ControlReply:
    if envelope.get("t") == "control_reply":
        return ControlReply(_id(envelope.get("id"), "control_reply"), envelope.get("result"))
    operation, arguments = envelope.get("op"), envelope.get("args", {})
    if not isinstance(operation, str) or not isinstance(arguments, dict):
        raise DecodeError("invalid", "control frame without an 'op' string and 'args' map")
    return ControlQuery(_id(envelope.get("id"), "control"), operation[:64], arguments)


def _levels(value: Any) -> frozenset[int] | None:
    """A pong's durable levels: None if absent (an older peer) or not a short list of ints."""
    if type(value) is not list or len(value) > _MAX_LEVELS:
        return None
    if not all(type(level) is int for level in value):
        return None
    return frozenset(value)


_MAX_LEVELS: Final = 1024


def _id(value: Any, what: str) -> str:
    if isinstance(value, str) and 0 < len(value) <= _MAX_ID_LENGTH:
        return value
    raise DecodeError("invalid", f"{what} frame without a valid id")


_KINDS: Final = frozenset(("request", "reply", "notification"))
_STATUSES: Final = frozenset(("pending", "in_progress", "done", "timeout", "error", "cancelled"))
_MAX_ADDRESS_LENGTH: Final = 300


def _message(fields: Any) -> Message:
    if not isinstance(fields, dict):
        raise DecodeError("invalid", "message frame without a message map 'm'")
    message = _common_message(fields)
    if message is not None:
        return message
    try:
        return WireMessage.model_validate(fields).to_message()
    except pydantic.ValidationError as invalid:
        raw_id = fields.get("id")
        message_id = raw_id if isinstance(raw_id, str) and len(raw_id) <= _MAX_ID_LENGTH else None
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'message'}: {error['msg']}"
            for error in invalid.errors()[:5]
        )
        raise DecodeError("invalid", f"invalid message: {problems}", message_id) from None


def _float(value: Any) -> float | None:
    """``value`` as `WireMessage` reads a float, for an exact float or int; else None."""
    kind = type(value)
    if kind is float:
        return value  # type: ignore[no-any-return]
    if kind is int:
        return float(value)
    return None


def _address(value: Any) -> Address | None:
    if type(value) is not str or len(value) > _MAX_ADDRESS_LENGTH:
        return None
    try:
        return Address.parse(value)
    except ValueError:
        return None


def _common_message(fields: dict[Any, Any]) -> Message | None:  # noqa: PLR0911 - one per check
    """The message, if every field is plainly valid; None sends the fields to pydantic.

    A hand-written check of the common case, about ten times cheaper than
    `WireMessage` validation. It accepts only what `WireMessage` accepts and
    makes the same `Message` of it; anything unusual (a missing field, a
    number as a string, a value out of range) returns None, and pydantic
    decides, with its errors.
    """
    if "not_before" in fields:
        return None  # a delayed message is rare: pydantic checks its time
    message_id, parent_id = fields.get("id"), fields.get("parent_id")
    kind, priority = fields.get("kind"), fields.get("priority")
    trace_id, status = fields.get("trace_id", ""), fields.get("status", "pending")
    attempts, wait_chain = fields.get("attempts", 0), fields.get("wait_chain", ())
    created_at, timeout = _float(fields.get("created_at")), _float(fields.get("timeout", 30.0))
    sender, recipient = _address(fields.get("sender")), _address(fields.get("recipient"))
    if (
        type(message_id) is not str or not 0 < len(message_id) <= _MAX_ID_LENGTH
        or created_at is None or sender is None or recipient is None
        or type(kind) is not str or kind not in _KINDS
        or type(priority) is not int or not MIN_PRIORITY <= priority <= MAX_PRIORITY
        or timeout is None or not 0 < timeout <= _MAX_TIMEOUT
        or type(trace_id) is not str or len(trace_id) > _MAX_ID_LENGTH
        or type(status) is not str or status not in _STATUSES
        or type(attempts) is not int or attempts < 0
    ):  # fmt: skip
        return None
    if parent_id is None:
        if kind == "reply":
            return None
    elif type(parent_id) is not str or not 0 < len(parent_id) <= _MAX_ID_LENGTH:
        return None
    if wait_chain:
        if type(wait_chain) is not list or len(wait_chain) > _MAX_WAIT_CHAIN:
            return None
        if any(_address(hop) is None for hop in wait_chain):
            return None
        wait_chain = tuple(wait_chain)
    elif type(wait_chain) is list:
        wait_chain = ()
    elif wait_chain != ():
        return None
    return Message(
        id=message_id, created_at=created_at, sender=sender, recipient=recipient,
        kind=kind,  # type: ignore[arg-type] # in _KINDS
        priority=priority, payload=fields.get("payload"), parent_id=parent_id, timeout=timeout,
        trace_id=trace_id, status=status,  # type: ignore[arg-type] # in _STATUSES
        attempts=attempts, wait_chain=wait_chain,
    )  # fmt: skip
