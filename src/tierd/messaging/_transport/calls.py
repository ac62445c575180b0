"""The client side of the wire, without I/O: what each call sends, and which frame settles it.

`Client` (blocking) and `AsyncClient` (asyncio) share this one implementation
of framing and correlation and differ only in how they move bytes: a
`Calls` builds each call's frame, keeps the calls in flight by id, and
settles them from the frames that come back (`Calls.received`). A call is
settled once, by the first frame about it: an ``ack`` or ``acks`` (a
notification), a reply (a request), a ``status_reply`` or ``control_reply``,
or an ``error`` frame about its id. Frames about calls no longer in flight
(a late reply to a timed-out request) are dropped.

Every method runs in the caller's thread; a `Calls` is for one thread (or one
event loop) at a time, like the socket beside it.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any, Final

from ...errors import (
    BatchRejected,
    ItemRefusal,
    Rejected,
    RequestTimeout,
    TierdError,
    from_payload,
)
from ..message import Address, Message, check_timeout, new_id, parse_priority
from .codec import (
    DEFAULT_MAX_MESSAGE_BYTES,
    AckFrame,
    AcksFrame,
    ControlReply,
    DecodeError,
    ErrorFrame,
    MessageFrame,
    PongFrame,
    StatusReply,
    decode_envelope,
    encode_control,
    encode_message,
    encode_ping,
    encode_status_query,
    reply_answer,
    unpack,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

PROBE_TIMEOUT: Final = 1.0
"""Seconds a timed-out call waits for a pong, to tell a slow handler from no runtime."""


class Call:
    """One call in flight: its frame, what it is about, and its outcome once settled."""

    __slots__ = ("data", "done", "error", "key", "on_settled", "result", "timeout", "what")

    def __init__(self, key: str, data: bytes, what: str, timeout: float) -> None:
        self.key = key
        """The id the answer names: the message id, or the query id."""
        self.data = data
        """The encoded frame to send."""
        self.what = what
        """What the call is about, for a timeout's message: the recipient, or the query."""
        self.timeout = timeout
        """Seconds the caller waits for its answer."""
        self.done = False
        self.result: Any = None
        self.error: TierdError | None = None
        self.on_settled: Callable[[Call], None] | None = None
        """Called once when the call settles, in the thread that fed the frame."""

    def outcome(self) -> Any:
        """The call's result; raises its error."""
        if self.error is not None:
            raise self.error
        return self.result

    def settle(self, result: Any = None, error: TierdError | None = None) -> None:
        """Record the outcome and tell ``on_settled``; a second settle does nothing."""
        if self.done:
            return
        self.done = True
        self.result = result
        self.error = error
        if self.on_settled is not None:
            self.on_settled(self)


class _Answer:
    """How an answer frame becomes a call's outcome."""

    ACK: Final = 0
    REPLY: Final = 1
    QUERY: Final = 2


class Calls:
    """The calls of one client connection, and the frames that build and settle them.

    Args:
        address: the sender address of this client's messages.
        max_bytes: the largest frame sent or accepted.
    """

    def __init__(self, address: Address, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.address = address
        self.max_bytes = max_bytes
        self.pending: dict[str, Call] = {}
        """The calls in flight, by the id their answer names."""
        self._pings: list[Call] = []
        self.heard = 0
        """Frames received so far: a call that heard anything knows the runtime is there."""

    @classmethod
    def for_client(cls, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Calls:
        """The calls of a new client, whose messages name it ``client-<16 hex>@0``."""
        return cls(Address(f"client-{os.urandom(8).hex()}", 0), max_bytes)

    # -- building calls -----------------------------------------------------------

    def send(
        self,
        target: str | Address,
        payload: Any,
        *,
        priority: int | str,
        timeout: float,
        ack_timeout: float,
        wait: bool = False,
        batch: bool = False,
        not_before: float | None = None,
    ) -> Call:
        """A notification, settled with its id once the runtime accepted it.

        ``not_before`` (epoch seconds, checked by the caller: see `not_before_of`)
        delays its delivery.

        Raises:
            ValueError: a bad address, priority or timeout.
            Rejected: the payload cannot be encoded, or is too large.
        """
        check_timeout(timeout)
        message = Message.notification(
            self.address, Address.parse(target), payload,
            priority=parse_priority(priority), timeout=timeout, not_before=not_before,
        )  # fmt: skip
        data = encode_message(message, self.max_bytes, wait=wait, batch=batch)
        patience = ack_timeout + (timeout if wait else 0.0)
        return self._add(Call(message.id, data, str(message.recipient), patience))

    def request(
        self, target: str | Address, payload: Any, *, timeout: float, priority: int | str
    ) -> Call:
        """A request, settled with its reply's payload (or the reply's error).

        Raises:
            ValueError: a bad address, priority or timeout.
            Rejected: the payload cannot be encoded, or is too large.
        """
        check_timeout(timeout)
        message = Message.request(
            self.address, Address.parse(target), payload,
            priority=parse_priority(priority), timeout=timeout,
        )  # fmt: skip
        data = encode_message(message, self.max_bytes, wants_ack=False)
        return self._add(Call(message.id, data, str(message.recipient), timeout))

    def status(self, endpoint: str, timeout: float) -> Call:
        """A status query, settled with the status document.

        Raises:
            ValueError: a bad timeout.
        """
        check_timeout(timeout)
        query_id = new_id()
        return self._add(
            Call(query_id, encode_status_query(query_id), f"status of {endpoint}", timeout)
        )

    def control(
        self, operation: str, arguments: dict[str, Any], endpoint: str, timeout: float
    ) -> Call:
        """A control operation, settled with its result.

        Raises:
            ValueError: a bad timeout.
        """
        check_timeout(timeout)
        query_id = new_id()
        data = encode_control(query_id, operation, arguments)
        return self._add(Call(query_id, data, f"{operation} on {endpoint}", timeout))

    def ping(self) -> Call:
        """A heartbeat, settled by the next pong (any pong: they carry no id)."""
        call = Call("", encode_ping(), "ping", PROBE_TIMEOUT)
        self._pings.append(call)
        return call

    def _add(self, call: Call) -> Call:
        self.pending[call.key] = call
        return call

    def forget(self, call: Call) -> None:
        """Stop waiting for ``call`` (timed out, cancelled): its answer, if any, is dropped."""
        if self.pending.get(call.key) is call:
            del self.pending[call.key]
        if call in self._pings:
            self._pings.remove(call)

    # -- settling them ----------------------------------------------------------------

    def received(self, data: bytes) -> None:  # noqa: PLR0912 - one branch per frame type
        """Settle whatever call the frame ``data`` answers; a bad frame is dropped."""
        self.heard += 1
        pending = self.pending
        try:
            envelope = unpack(data, self.max_bytes)
            answer = reply_answer(envelope)
            if answer is not None:  # the common case: settle it without building a Message
                parent_id, failed, payload = answer
                call = pending.pop(parent_id, None)
                if call is not None and failed:
                    call.settle(error=from_payload(payload))
                elif call is not None:
                    call.settle(payload)
                return
            frame = decode_envelope(envelope)
        except DecodeError:
            return
        match frame:
            case AcksFrame(message_ids=ids):
                for message_id in ids:
                    call = pending.pop(message_id, None)
                    if call is not None:
                        call.settle(message_id)
            case AckFrame(message_id=message_id):
                call = pending.pop(message_id, None)
                if call is not None:
                    call.settle(message_id)
            case MessageFrame(message=reply) if reply.parent_id is not None:
                call = pending.pop(reply.parent_id, None)
                if call is not None:
                    if reply.status == "error":
                        call.settle(error=from_payload(reply.payload))
                    else:
                        call.settle(reply.payload)
            case (
                StatusReply(query_id=key, status=result) | ControlReply(query_id=key, result=result)
            ):
                call = pending.pop(key, None)
                if call is not None:
                    call.settle(result)
            case ErrorFrame(message_id=message_id, error=error):
                if message_id is None:
                    # A frame refused before its id could be read: it can only be
                    # pinned on a call when one is in flight.
                    if len(pending) != 1:
                        return
                    message_id = next(iter(pending))
                call = pending.pop(message_id, None)
                if call is not None:
                    call.settle(error=from_payload(error))
            case PongFrame():
                pings, self._pings = self._pings, []
                for call in pings:
                    call.settle(result=True)
            case _:
                pass

    def timed_out(self, call: Call, endpoint: str, *, runtime_answers: bool) -> RequestTimeout:
        """The `RequestTimeout` for ``call``, saying whether the runtime is there at all.

        A request is sent without an ack, so silence alone cannot tell a
        runtime that is not there from a handler that is slow; the caller
        finds out with one ping, only on this failure path.
        """
        error = RequestTimeout(call.key, call.what, call.timeout)
        if runtime_answers:
            error.args = (
                f"request {call.key} to {call.what}: the runtime at {endpoint} has it, and "
                f"no reply came within {call.timeout:g}s; the handler is slow or stuck: raise "
                "the timeout, or look at what it waits on (tierd status)",
            )
        else:
            error.args = (
                f"no answer at all from {endpoint} within {call.timeout:g}s ({call.what}, "
                f"message {call.key}): is tierd running there, and (with CURVE) is this "
                "client's public key in its curve_allowed_clients?",
            )
        return error


class Window:
    """The items of one ``send_many``: their ids by index, what is unconfirmed, what was refused.

    `Client` and `AsyncClient` drive it the same way: `build` each item, send
    its frame, wait while `full`, `give_up` on silence, then `outcome`. It
    keeps an id per item and a call only while it is unconfirmed, so a
    million items cost their ids, not their frames.
    """

    __slots__ = ("_open", "ids", "on_change", "refused", "size")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"window must be at least 1, not {size}")
        self.size = size
        """The most messages unconfirmed at once."""
        self.ids: list[str] = []
        """Each item's message id, by index; ``""`` for an item that was never sent."""
        self.refused: list[ItemRefusal] = []
        """The items refused so far, in the order their refusals came."""
        self._open: dict[int, Call] = {}
        """The calls sent and not settled yet, by item index."""
        self.on_change: Callable[[], None] | None = None
        """Called whenever a call settles (an asyncio client wakes its sender with it)."""

    @property
    def unconfirmed(self) -> int:
        """Messages sent and not settled yet."""
        return len(self._open)

    @property
    def full(self) -> bool:
        """Whether the sender must wait for confirms before it sends more."""
        return len(self._open) >= self.size

    def build(self, calls: Calls, item: tuple[str | Address, Any], **options: Any) -> Call | None:
        """The call for the next item, counted in flight; None if it cannot be sent (refused)."""
        index = len(self.ids)
        target, payload = item
        try:
            call = calls.send(target, payload, batch=True, **options)
        except (ValueError, Rejected) as error:
            refusal = error if isinstance(error, Rejected) else Rejected(str(error))
            self.ids.append("")
            self.refused.append(ItemRefusal(index, "", refusal))
            return None
        self.ids.append(call.key)
        self._open[index] = call
        call.on_settled = functools.partial(self._settled, index)
        return call

    def _settled(self, index: int, call: Call) -> None:
        del self._open[index]
        if call.error is not None:
            self.refused.append(ItemRefusal(index, call.key, call.error))
        if self.on_change is not None:
            self.on_change()

    def give_up(self, calls: Calls, ack_timeout: float, rest: Iterable[object] = ()) -> None:
        """Fail every unconfirmed call (no confirm came in time), and every item of ``rest``.

        ``rest`` is what was never sent: each gets a `Rejected` and no id.
        """
        for call in list(self._open.values()):
            calls.forget(call)
            call.settle(error=RequestTimeout(call.key, call.what, ack_timeout))
        for _ in rest:
            self.refused.append(
                ItemRefusal(
                    len(self.ids), "",
                    Rejected(
                        f"not sent: an earlier message got no confirm within {ack_timeout:g}s "
                        "(is the runtime there?)"
                    ),
                )
            )  # fmt: skip
            self.ids.append("")

    def outcome(self) -> list[str]:
        """Every id, by index, if all were accepted.

        Raises:
            BatchRejected: some were not; it lists each with its index, id and error.
        """
        if self.refused:
            raise BatchRejected(self.ids, sorted(self.refused, key=_by_index))
        return self.ids


def _by_index(refusal: ItemRefusal) -> int:
    return refusal.index
