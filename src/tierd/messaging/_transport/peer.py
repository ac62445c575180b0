"""`PeerLink`: the `Link` to levels served by another runtime.

A peer link owns one DEALER connection (the socket itself belongs to the
bridge's I/O thread) and everything the runtime remembers about the peer:

- **liveness**: a ping every ``heartbeat_interval``; any frame from the peer
  counts as a sign of life, and ``heartbeat_liveness`` intervals of silence
  mark it down (``peers_up`` and ``tierd_peer_up`` show it);
- **held messages**: every message sent is held until the peer acknowledges
  it. While the peer is down they are only held (at most ``buffer_limit``);
  when it comes back they are sent in order. A held message that is not
  acknowledged within the liveness time is sent again; the receiver drops
  the repeat by id, so a daemon never sees it twice;
- **reply routes**: for each request, where its reply goes, until the reply
  arrives or the request's deadline passes (the requester times out on its
  own side; this side only forgets);
- **waiting senders**: a notification submitted with ``wait`` goes out with
  the wire's ``wait`` flag, so that a full level at the peer parks it until
  there is room instead of refusing it. Its sender gets an `Outcome` that
  settles when the peer answers: None with the ack (the message got in), the
  error with an error frame (no room within its timeout, or any refusal).
  If the peer does not answer by the message's deadline, a little grace
  included, the outcome settles with `Rejected`;
- **end-to-end acceptance**: a notification for a level the peer keeps
  durably is confirmed the same way, by the peer's ack, which the peer sends
  only after its journal commit. So a sender told "accepted" has its message
  on the serving runtime's disk, never only in this runtime's memory. The
  peer says which of its levels are durable in every pong; until it has said
  (or if it never does: an older tierd), every notification is confirmed so.

Only the I/O thread touches that state. `submit` may be called from any
thread: it encodes in the caller's thread and hands the rest over.
"""

from __future__ import annotations

import collections
import time
from typing import TYPE_CHECKING, Any, Final, Protocol

from ..._deadlines import DeadlineHeap
from ..._outcome import Outcome
from ...errors import Rejected, RequestTimeout, from_payload
from ..link import error_reply
from .codec import (
    DEFAULT_MAX_MESSAGE_BYTES,
    AckFrame,
    DecodeError,
    ErrorFrame,
    MessageFrame,
    PongFrame,
    decode,
    encode_message,
    encode_ping,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ...errors import TierdError
    from ..link import ReplyRoute
    from ..message import Message
    from .handoff import Handoff
    from .rejections import Rejections

_REPLY_GRACE: Final = 1.0
"""Seconds a reply route is kept past its request's deadline, for a reply already on its way."""
_ANSWER_GRACE: Final = 0.5
"""Seconds a waiting sender's message is kept past its deadline, for the peer's answer.

The peer refuses a message that found no room by its own sweep, a moment after
the deadline; its refusal says more than a timeout here. Well under the margin
`Runtime.send` waits past the deadline (at least one second).
"""


class PeerSettings(Protocol):
    """One ``[[peers]]`` table as the transport reads it (`tierd.config.PeerConfig` is one).

    The peer link reads the endpoint, the heartbeat settings and the buffer
    limit; the bridge reads the levels to route, and the key and the
    reconnection intervals when it connects the peer's DEALER.
    """

    @property
    def endpoint(self) -> str:
        """The peer's ``runtime.endpoint``."""

    @property
    def levels(self) -> Sequence[int]:
        """The levels the peer serves."""

    @property
    def heartbeat_interval(self) -> float:
        """Seconds between heartbeats sent to the peer."""

    @property
    def heartbeat_liveness(self) -> int:
        """Heartbeat intervals without a word from the peer before it is marked down."""

    @property
    def buffer_limit(self) -> int:
        """Messages held for the peer while it is down or has not acknowledged them."""

    @property
    def server_key(self) -> str:
        """The peer's CURVE public key file; "" talks to it in the clear."""

    @property
    def reconnect_interval(self) -> float:
        """Seconds before the first reconnection attempt."""

    @property
    def reconnect_interval_max(self) -> float:
        """The longest wait between reconnection attempts."""


class _Held:
    """A message sent, or to be sent, to the peer and not yet acknowledged."""

    __slots__ = ("accepted", "deadline", "expires", "frame", "message", "sent_at")

    def __init__(
        self,
        message: Message,
        frame: bytes,
        deadline: float,
        accepted: Outcome[TierdError | None] | None,
    ) -> None:
        self.message = message
        self.frame = frame
        self.deadline = deadline
        """Monotonic seconds when the message's timeout passes."""
        self.expires = deadline
        """When it is given up: the deadline, plus `_ANSWER_GRACE` once a waiting one is sent."""
        self.accepted = accepted
        """A waiting sender's outcome, settled by the peer's answer; None for the others."""
        self.sent_at: float | None = None


class PeerLink:
    """The link to one ``[[peers]]`` entry.

    Args:
        config: the peer's table from the config.
        handoff: the bridge's hand-off to its I/O thread.
        rejections: where refused frames from the peer are counted.
        log: a structlog logger.
        max_bytes: the frame size limit.
        clock: monotonic seconds.
    """

    def __init__(
        self,
        config: PeerSettings,
        handoff: Handoff,
        rejections: Rejections,
        log: Any,
        max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.endpoint = config.endpoint
        self.handoff = handoff
        self.rejections = rejections
        self.log = log.bind(peer=config.endpoint)
        self.max_bytes = max_bytes
        self.clock = clock
        self.transmit: Callable[[bytes], bool] = _not_connected
        """Send one frame on the DEALER; False if it cannot go now. Set by the bridge."""
        self.up = False
        """Whether the peer answered within the liveness time; read from any thread."""
        self.held_count = 0
        """How many messages are held; written by the I/O thread, read by any thread."""
        self._held: collections.OrderedDict[str, _Held] = collections.OrderedDict()
        self._routes: dict[str, tuple[ReplyRoute, Message]] = {}
        self._route_deadlines: DeadlineHeap[str] = DeadlineHeap()
        self._last_heard = float("-inf")
        self._next_ping = 0.0
        self.expired = 0
        """Held messages whose timeout passed before the peer acknowledged them."""
        self.durable_levels: frozenset[int] | None = None
        """The levels the peer keeps durably, as its last pong said; None: not said yet."""

    @property
    def silence_limit(self) -> float:
        """Seconds without a word from the peer before it is marked down."""
        return self.config.heartbeat_interval * self.config.heartbeat_liveness

    # -- any thread --------------------------------------------------------------

    def submit(
        self, message: Message, reply_route: ReplyRoute | None, *, wait: bool = False
    ) -> Outcome[TierdError | None] | None:
        """Send ``message`` to the peer, or hold it until the peer can take it.

        Args:
            message: a request or a notification.
            reply_route: where a request's reply goes.
            wait: for a notification, ask the peer to park it in a full level
                until there is room (up to its timeout) instead of refusing
                it. The peer's runtime waits for room for notifications only,
                so a request is sent as it is: a full level answers it with
                an error reply, through ``reply_route``.

        Returns:
            None: the message is held, and counts as accepted. With ``wait``,
            or for a level the peer keeps durably (or may: it has not said),
            a notification gets an outcome instead, settled when the peer
            answers: None once the message got in (committed, on a durable
            level), the error if it was refused, `Rejected` if no answer
            came by its deadline.

        Raises:
            Rejected: a notification that cannot be encoded, or that finds the
                buffer full. A request is answered through ``reply_route`` instead.
        """
        wait = wait and message.kind == "notification"
        try:
            frame = encode_message(message, self.max_bytes, wait=wait)
            if self.held_count >= self.config.buffer_limit:
                raise self._full()
        except Rejected as refused:
            if message.kind == "request" and reply_route is not None:
                reply_route.deliver_reply(error_reply(message, refused))
                return None
            raise
        confirmed = wait or (message.kind == "notification" and self._durable_there(message))
        accepted: Outcome[TierdError | None] | None = Outcome() if confirmed else None
        if self.handoff.in_owner():
            self._submit_now(message, frame, reply_route, accepted)
            return accepted
        handed = self.handoff.call_soon(
            self._submit_handed_over, message, frame, reply_route, accepted
        )
        if not handed and accepted is not None:  # the bridge stopped: no one will answer
            accepted.set(Rejected("runtime is stopping"))
        return accepted

    def _durable_there(self, message: Message) -> bool:
        """Whether the peer keeps the message's level durably, or has not said it does not."""
        durable = self.durable_levels
        return durable is None or message.recipient.level in durable

    def _full(self) -> Rejected:
        state = "is down" if not self.up else "has not acknowledged them"
        return Rejected(
            f"peer {self.endpoint} {state} and {self.config.buffer_limit} messages are held "
            "for it already (peers.buffer_limit); retry later or check the peer"
        )

    # -- the I/O thread ----------------------------------------------------------

    def _submit_handed_over(
        self,
        message: Message,
        frame: bytes,
        reply_route: ReplyRoute | None,
        accepted: Outcome[TierdError | None] | None,
    ) -> None:
        # The caller checked held_count, but a burst from several threads can
        # still meet a full buffer here; a notification then has no one to
        # tell, unless its sender waits for the outcome.
        try:
            self._submit_now(message, frame, reply_route, accepted)
        except Rejected as full:
            if accepted is not None:
                accepted.set(full)
                return
            self.log.warning(
                "peer_message_refused", message_id=message.id, trace_id=message.trace_id,
                reason=str(full),
            )  # fmt: skip

    def _submit_now(
        self,
        message: Message,
        frame: bytes,
        reply_route: ReplyRoute | None,
        accepted: Outcome[TierdError | None] | None = None,
    ) -> None:
        if len(self._held) >= self.config.buffer_limit:
            full = self._full()
            if message.kind == "request" and reply_route is not None:
                reply_route.deliver_reply(error_reply(message, full))
                return
            raise full
        now = self.clock()
        remaining = message.created_at + message.timeout - time.time()
        deadline = now + max(remaining, 0.0)
        held = _Held(message, frame, deadline, accepted)
        self._held[message.id] = held
        self.held_count = len(self._held)
        if message.kind == "request" and reply_route is not None:
            self._routes[message.id] = (reply_route, message)
            self._route_deadlines.add(deadline + _REPLY_GRACE, message.id)
        if self.up:
            self._send(held, now)

    def _send(self, held: _Held, now: float) -> bool:
        if not self.transmit(held.frame):
            return False
        held.sent_at = now
        if held.accepted is not None:
            held.expires = held.deadline + _ANSWER_GRACE
        self._held.move_to_end(held.message.id)
        return True

    def on_frames(self, frames: list[bytes]) -> None:
        """Act on one multipart frame from the peer's DEALER connection."""
        body = frames[-1]
        try:
            frame = decode(body, self.max_bytes)
        except DecodeError as bad:
            self.rejections.count(bad.reason, bad.detail, peer=self.endpoint)
            return
        self._heard(self.clock())
        match frame:
            case AckFrame(message_id=message_id):
                self._forget_held(message_id)
            case MessageFrame(message=reply) if reply.kind == "reply":
                self._forget_held(reply.parent_id or "")
                self._route_reply(reply)
            case ErrorFrame(message_id=message_id, error=error) if message_id is not None:
                self._refused(message_id, error)
            case ErrorFrame(error=error):
                self.log.warning("peer_refused_frame", error=error.get("text"))
            case PongFrame(durable=durable):
                if durable is not None:
                    self.durable_levels = durable
            case _:
                kind = type(frame).__name__
                self.rejections.count("unexpected", f"{kind} from a peer", peer=self.endpoint)

    def _forget_held(self, message_id: str) -> None:
        held = self._held.pop(message_id, None)
        if held is not None:
            self.held_count = len(self._held)
            if held.accepted is not None:
                held.accepted.set(None)

    def _route_reply(self, reply: Message) -> None:
        entry = self._routes.pop(reply.parent_id or "", None)
        if entry is None:
            self.log.debug("late_reply_from_peer", parent_id=reply.parent_id)
            return
        entry[0].deliver_reply(reply)

    def _refused(self, message_id: str, error: dict[str, Any]) -> None:
        held = self._held.pop(message_id, None)
        self.held_count = len(self._held)
        entry = self._routes.pop(message_id, None)
        if entry is not None:
            route, request = entry
            route.deliver_reply(request.reply_to(error, status="error"))
        elif held is not None and held.accepted is not None:
            held.accepted.set(from_payload(error))
        elif held is not None:
            self.log.warning(
                "peer_refused_message", message_id=message_id, error=str(from_payload(error))
            )

    def _heard(self, now: float) -> None:
        self._last_heard = now
        if not self.up:
            self.up = True
            self.log.info("peer_up", held=len(self._held))
            self._resend(now, everything=True)

    def tick(self, now: float) -> None:
        """Heartbeats, liveness, resends and expiry; the I/O loop calls it often."""
        if now >= self._next_ping:
            self.transmit(encode_ping())
            self._next_ping = now + self.config.heartbeat_interval
        if self.up and now - self._last_heard > self.silence_limit:
            self.up = False
            self.log.warning(
                "peer_down", silent_for=round(now - self._last_heard, 3), held=len(self._held)
            )
        self._expire(now)
        if self.up:
            self._resend(now, everything=False)
        for request_id in self._route_deadlines.expired(now):
            self._routes.pop(request_id, None)  # the requester timed out on its side

    def next_tick(self) -> float:
        """The monotonic time by which `tick` should run again."""
        return self._next_ping

    def _resend(self, now: float, *, everything: bool) -> None:
        """Send held messages never sent, or (``everything`` or not) acknowledged too late."""
        stale_before = now - self.silence_limit
        for held in list(self._held.values()):
            due = everything or held.sent_at is None or held.sent_at < stale_before
            if due and not self._send(held, now):
                return  # the connection is not ready; the next tick tries again

    def _expire(self, now: float) -> None:
        expired = [held for held in self._held.values() if held.expires <= now]
        for held in expired:
            message = held.message
            del self._held[message.id]
            self.expired += 1
            entry = self._routes.pop(message.id, None)
            if entry is not None:
                timeout = RequestTimeout(message.id, str(message.recipient), message.timeout)
                entry[0].deliver_reply(error_reply(message, timeout))
            elif held.accepted is not None:
                held.accepted.set(self._unanswered(held))
            else:
                self.log.warning(
                    "peer_message_expired", message_id=message.id, trace_id=message.trace_id,
                    to=str(message.recipient), up=self.up,
                )  # fmt: skip
        if expired:
            self.held_count = len(self._held)

    def _unanswered(self, held: _Held) -> Rejected:
        """The refusal a waiting sender gets when the peer did not answer in time."""
        timeout = held.message.timeout
        if held.sent_at is None or not self.up:
            return Rejected(
                f"peer {self.endpoint} is down: the message was not accepted within its "
                f"{timeout:g}s timeout; retry later or check the peer"
            )
        return Rejected(
            f"peer {self.endpoint} did not confirm within the message's {timeout:g}s timeout "
            "that its level accepted it; retry later or check the peer"
        )

    def fail_waiting(self, error: TierdError) -> None:
        """Settle every waiting sender's outcome with ``error``: the bridge stops."""
        for held in self._held.values():
            if held.accepted is not None:
                held.accepted.set(error)


def _not_connected(_frame: bytes) -> bool:
    return False
