"""What the runtime does with each frame that arrives at its ROUTER socket.

`InboundHandler` holds the decisions and none of the I/O, so it is tested
with plain function calls (like pyzmq keeps its authenticator's logic in
``zmq/auth/base.py`` and the socket pump in ``thread.py``). The bridge's I/O
thread calls `InboundHandler.handle` with each multipart frame; the handler
answers through the ``send`` function it was given.

A request is routed (`Router.check`) and submitted with a `ReplyToSender`
route, so that its reply retraces the path to the ZeroMQ identity it came
from. Every accepted request and notification is acknowledged with its id
(a client's ``send`` returns once it sees the ack; a peer stops resending),
unless the sender asked for no ack: a client's request waits for its reply,
and an ack would only cost both sides a frame. A sender that marks its
messages ``batch`` (`Client.send_many`) is confirmed with one ``acks`` frame
per drain of the ROUTER instead of one ``ack`` per message: the bridge calls
`InboundHandler.flush` after each batch of frames, and acks that settle later
in another thread (a durable level's group commit) are gathered the same way
and flushed by the I/O thread, one wake-up for a whole commit. A notification sent with
``wait`` is acked once its level let it in, which may be long after it
arrived; a resend of it meanwhile (a peer resends what is not acked) gets
no answer of its own, since its ack or its refusal is still to come.
Bad frames are counted by reason, answered where the sender can be, and
never raise.

A sender is who its connection says it is, never what its frames claim:
duplicates are detected per (sender, id), where the sender is the client's
CURVE public key (the frame's ``User-Id``) or, without CURVE, its connection's
routing id. So one client's ids can never make another's messages vanish.
A control frame runs only for a connection whose key has the ``operate``
role (`Access`); without CURVE every connection may.
"""

from __future__ import annotations

import functools
import threading
import time
from typing import TYPE_CHECKING, Any

from ...errors import Rejected, RemoteError, TierdError, UnknownRecipient, to_payload
from ..message import Message, new_id
from .access import Access
from .codec import (
    DEFAULT_MAX_MESSAGE_BYTES,
    MAX_ACKS_PER_FRAME,
    ControlQuery,
    DecodeError,
    MessageFrame,
    PingFrame,
    StatusQuery,
    decode,
    encode_ack,
    encode_acks,
    encode_error,
    encode_message,
    encode_pong,
)
from .dedup import RecentIds

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..link import Router
    from .dedup import SenderId
    from .rejections import Rejections


class ReplyToSender:
    """The reply route of a request that came from the network: back to its ZeroMQ identity.

    ``deliver_reply`` runs in whichever thread made the reply (an
    orchestrator's, usually); it encodes there and hands the frame to the
    I/O thread through ``send``, which must be thread-safe.
    """

    __slots__ = ("identity", "max_bytes", "send")

    def __init__(
        self, identity: bytes, send: Callable[[bytes, bytes], None], max_bytes: int
    ) -> None:
        self.identity = identity
        self.send = send
        self.max_bytes = max_bytes

    @property
    def durable_identity(self) -> bytes:
        """The client's ZeroMQ identity: it reconnects with it after a restart."""
        return self.identity

    def deliver_reply(self, reply: Message) -> None:
        """Encode the reply and send it to the identity the request came from."""
        try:
            frame = encode_message(reply, self.max_bytes)
        except Rejected as refused:
            frame = encode_message(unsendable_reply(reply, refused))
        self.send(self.identity, frame)


def unsendable_reply(reply: Message, refused: Rejected) -> Message:
    """The error reply that stands in for a reply that cannot be encoded."""
    error = RemoteError(str(reply.sender), "Rejected", f"its reply cannot be sent: {refused}")
    return reply.replace(
        id=new_id(), created_at=time.time(), payload=to_payload(error), status="error"
    )


class InboundHandler:
    """Decisions about frames from clients and peers; runs in the I/O thread only.

    Args:
        router: which link serves each level.
        rejections: where refused frames are counted.
        recent: (sender, id) pairs accepted lately, to drop resends.
        send_now: send ``(identity, frame)`` from the I/O thread.
        send_any_thread: the same, callable from any thread (for replies).
        ask_status: start answering a status query ``(identity, query_id)``
            somewhere the I/O thread does not wait for it.
        ask_control: the same for a control operation ``(identity, query)``;
            None refuses control frames.
        call_soon: run a function in the I/O thread soon, from any thread; it
            flushes batched acks that settled elsewhere. None sends those one
            by one.
        max_bytes: the frame size limit.
        clock: monotonic seconds.
        access: who may run control operations; everyone by default (no CURVE).
        durable_levels: this runtime's durable levels, told to peers in every pong.
    """

    def __init__(
        self,
        router: Router,
        rejections: Rejections,
        recent: RecentIds,
        *,
        send_now: Callable[[bytes, bytes], None],
        send_any_thread: Callable[[bytes, bytes], None],
        ask_status: Callable[[bytes, str], None],
        ask_control: Callable[[bytes, ControlQuery], None] | None = None,
        call_soon: Callable[[Callable[[], None]], object] | None = None,
        max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        clock: Callable[[], float] = time.monotonic,
        access: Access | None = None,
        durable_levels: frozenset[int] = frozenset(),
    ) -> None:
        self.router = router
        self._pong = encode_pong(durable_levels)
        self.access = access if access is not None else Access()
        self.recovered = RecentIds(recent.window)
        """Ids a durable level handled before a restart, whoever sent them (see `remember`)."""
        self._recovering = False
        """Whether `recovered` holds any id: a plain flag, read on every message."""
        self.rejections = rejections
        self.recent = recent
        self.send_now = send_now
        self.send_any_thread = send_any_thread
        self.ask_status = ask_status
        self.ask_control = ask_control
        self.call_soon = call_soon
        self.max_bytes = max_bytes
        self.clock = clock
        self.accepting = True
        """False once the runtime stops: new messages are refused, replies still go out."""
        self.accepted = 0
        """Messages accepted from the network."""
        self.duplicates = 0
        """Resent messages acknowledged again and not handed on."""
        self.received = 0
        """Every multipart frame handed to `handle`, good or bad."""
        self.refused = 0
        """Well-formed messages refused (unknown recipient, queue full, stopping)."""
        self.queries = 0
        """Pings, status and control queries answered or passed on."""
        self.waiting: set[SenderId] = set()
        """(sender, id) of messages waiting for room; added by this thread, removed by the
        settling one.

        A set's add and discard are atomic, so it needs no lock.
        """
        self._confirms: dict[bytes, list[str]] = {}
        """Batched acks owed per sender, sent by `flush`; the I/O thread's only."""
        self._late_lock = threading.Lock()
        self._late_confirms: dict[bytes, list[str]] = {}
        """Batched acks that settled in other threads; under ``_late_lock``."""
        self.confirm_frames = 0
        """``acks`` frames sent: each confirms one or more messages."""

    def handle(self, frames: list[bytes], user_id: str | None = None) -> None:
        """Act on one multipart frame from the ROUTER: ``[identity, body]``.

        Args:
            frames: the routing id of the connection, and the frame.
            user_id: the connection's CURVE public key (Z85), under CURVE; None without.
        """
        self.received += 1
        if len(frames) != 2:
            identity = frames[0] if frames else b""
            self._refuse_frame(identity, DecodeError("malformed", f"{len(frames) - 1} body parts"))
            return
        identity, body = frames
        try:
            frame = decode(body, self.max_bytes)
        except DecodeError as error:
            self._refuse_frame(identity, error)
            return
        match frame:
            case MessageFrame(message=message, wants_ack=wants_ack, wait=wait, batch=batch):
                sender = identity if user_id is None else user_id
                self._accept(
                    identity, message, (sender, message.id), wants_ack=wants_ack, wait=wait,
                    batch=batch,
                )  # fmt: skip
            case PingFrame():
                self.queries += 1
                self.send_now(identity, self._pong)
            case StatusQuery(query_id=query_id):
                self.queries += 1
                if self.accepting:
                    self.ask_status(identity, query_id)
                else:
                    self.send_now(identity, encode_error(query_id, _stopping_payload()))
            case ControlQuery(query_id=query_id) if self.ask_control is not None:
                self.queries += 1
                if not self.accepting:
                    self.send_now(identity, encode_error(query_id, _stopping_payload()))
                elif self.access.may(user_id, frame.operation):
                    self.ask_control(identity, frame)
                else:
                    self._forbid(identity, frame)
            case _:
                kind = type(frame).__name__
                self._refuse_frame(identity, DecodeError("unexpected", f"{kind} sent to a runtime"))

    def flush(self) -> None:
        """Send the batched acks owed: one ``acks`` frame per sender; I/O thread only."""
        if self._late_confirms:
            with self._late_lock:
                late, self._late_confirms = self._late_confirms, {}
            for identity, ids in late.items():
                self._confirms.setdefault(identity, []).extend(ids)
        if not self._confirms:
            return
        confirms, self._confirms = self._confirms, {}
        for identity, ids in confirms.items():
            for start in range(0, len(ids), MAX_ACKS_PER_FRAME):
                self.confirm_frames += 1
                self.send_now(identity, encode_acks(ids[start : start + MAX_ACKS_PER_FRAME]))

    def _confirm(self, identity: bytes, message_id: str, *, batch: bool) -> None:
        """Ack ``message_id`` now, or owe it to the next `flush`; I/O thread only."""
        if batch:
            owed = self._confirms.get(identity)
            if owed is None:
                self._confirms[identity] = [message_id]
            else:
                owed.append(message_id)
        else:
            self.send_now(identity, encode_ack(message_id))

    def _confirm_later(self, identity: bytes, message_id: str) -> None:
        """Owe a batched ack that settled in another thread; the I/O thread flushes it."""
        with self._late_lock:
            first = not self._late_confirms
            self._late_confirms.setdefault(identity, []).append(message_id)
        if first:
            assert self.call_soon is not None
            self.call_soon(self.flush)

    def _accept(
        self,
        identity: bytes,
        message: Message,
        key: SenderId,
        *,
        wants_ack: bool = True,
        wait: bool = False,
        batch: bool = False,
    ) -> None:
        if message.kind == "reply":
            # Replies travel back on the connection their request went out on, never here.
            error = DecodeError("unexpected", "a reply sent to a runtime's endpoint", message.id)
            self._refuse_frame(identity, error)
            return
        if key in self.recent or (self._recovering and message.id in self.recovered):
            self.duplicates += 1
            if key not in self.waiting:
                self._confirm(identity, message.id, batch=batch)
            return
        if not self.accepting:
            self._refuse(identity, message, Rejected("runtime is stopping"))
            return
        route = None
        if message.kind == "request":
            route = ReplyToSender(identity, self.send_any_thread, self.max_bytes)
        wait = wait and message.kind == "notification"
        if wait:
            # Seen now, so that a resend while it waits for room is not taken twice.
            self.recent.add(key, self.clock())
            self.waiting.add(key)
        try:
            # A link never waits here (a journal commit, room in a full queue, a
            # peer's ack): this thread serves every client. What takes longer
            # comes back as an outcome, and the ack goes out when it settles.
            accepted = self.router.check(message.recipient).submit(message, route, wait=wait)
        except (UnknownRecipient, Rejected) as error:
            self.waiting.discard(key)
            self._refuse(identity, message, error)
            return
        if not wait:
            self.recent.add(key, self.clock())
        elif accepted is None:  # the link took it at once
            self.waiting.discard(key)
        if accepted is None:
            self.accepted += 1
            if wants_ack:
                self._confirm(identity, message.id, batch=batch)
        else:
            accepted.add_done_callback(
                functools.partial(
                    self._settled, identity, message, key, wants_ack=wants_ack, batch=batch
                )
            )

    def _settled(
        self,
        identity: bytes,
        message: Message,
        key: SenderId,
        error: TierdError | None,
        *,
        wants_ack: bool,
        batch: bool = False,
    ) -> None:
        """Ack a message once its link accepted it, or refuse it; runs in the settling thread."""
        if error is None:
            self.accepted += 1  # an int add: atomic enough under the GIL for a counter
            if wants_ack and batch and self.call_soon is not None:
                self._confirm_later(identity, message.id)
            elif wants_ack:
                self.send_any_thread(identity, encode_ack(message.id))
        elif message.kind == "request":
            reply = message.reply_to(to_payload(error), status="error")
            self.send_any_thread(identity, encode_message(reply, self.max_bytes))
        else:
            self.send_any_thread(identity, encode_error(message.id, to_payload(error)))
        # Only now: a resend that came meanwhile must not be acked ahead of a refusal.
        self.waiting.discard(key)

    def _refuse(self, identity: bytes, message: Message, error: TierdError) -> None:
        """Tell the sender its message was refused: an error reply, or an error frame."""
        self.refused += 1
        if message.kind == "request":
            reply = message.reply_to(to_payload(error), status="error")
            self.send_now(identity, encode_message(reply, self.max_bytes))
        else:
            self.send_now(identity, encode_error(message.id, to_payload(error)))

    def _forbid(self, identity: bytes, query: ControlQuery) -> None:
        """Refuse a control operation to a connection whose key has only the ``send`` role."""
        self.access.forbidden += 1
        self.rejections.count("forbidden", query.operation, sender=identity.hex()[:16])
        refused = Rejected(
            f"the control operation {query.operation!r} needs a client key with the "
            "'operate' role in runtime.curve_allowed_clients; this key has 'send'"
        )
        self.send_now(identity, encode_error(query.query_id, to_payload(refused)))

    def remember(self, message_id: str, now: float) -> None:
        """Treat ``message_id`` as accepted from any sender: a durable level handled it.

        The journal keeps handled ids without their sender, so after a restart
        a resend of one of them is acked and dropped whoever sends it.
        """
        self.recovered.add(message_id, now)
        self._recovering = True

    def _refuse_frame(self, identity: bytes, error: DecodeError) -> None:
        self.rejections.count(error.reason, error.detail, sender=identity.hex()[:16])
        if identity:
            payload = to_payload(Rejected(f"frame refused ({error.reason}): {error.detail}"))
            self.send_now(identity, encode_error(error.message_id, payload))

    def tick(self, now: float) -> None:
        """Housekeeping the I/O loop calls now and then: forget old message ids."""
        self.recent.prune(now)
        if self._recovering:
            self.recovered.prune(now)
            self._recovering = len(self.recovered) > 0


def _stopping_payload() -> dict[str, Any]:
    return to_payload(Rejected("runtime is stopping"))
