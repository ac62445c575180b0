"""The ZeroMQ bridge: one I/O thread owns every socket of the runtime.

- a ROUTER bound at ``runtime.endpoint`` takes clients and peers
  (`InboundHandler` decides what to do with each frame);
- one DEALER per ``[[peers]]`` entry reaches the levels another runtime
  serves (`PeerLink` keeps that connection's state).

ZeroMQ sockets are not thread-safe. The DEALERs belong to the I/O thread
alone: other threads hand their frames to it through a `Handoff` (see
``docs/networking.md``). The ROUTER is guarded by a lock instead, so that
the thread that makes a reply sends it itself and the I/O thread is not
woken for it; ZeroMQ allows a socket to move between threads behind a full
memory barrier, which a lock's acquire and release are. The I/O thread
never waits on the ROUTER itself while it holds no lock: it polls the
ROUTER's ``zmq.FD`` (a plain file descriptor) next to the DEALERs and the
hand-off's wake-up socket, and between waits runs the peers' heartbeats and
expiries. A frame that makes a step raise is logged and skipped: nothing a
client sends can stop the runtime.

``zmq.FD`` only signals *changes*, and any call on the socket may consume
the signal. So whoever calls the ROUTER outside the I/O thread's own drain
reads ``zmq.EVENTS`` afterwards, under the lock, and if a frame is waiting
it makes sure the I/O thread drains again: a wake-up through the hand-off
from another thread, a flag from the I/O thread itself.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Final, Protocol

import zmq

from ...errors import BindError, Rejected, TierdError, to_payload
from ...logging import get_logger
from .access import Access
from .codec import ControlQuery, encode_control_reply, encode_error, encode_status_reply
from .dedup import RecentIds
from .handoff import Handoff
from .inbound import InboundHandler, ReplyToSender
from .peer import PeerLink, PeerSettings
from .publisher import EventPublisher, Followers
from .rejections import Rejections
from .security import (
    KeyPair,
    connect_with_curve,
    load_key_pair,
    load_public_key,
    serve_with_curve,
    start_authenticator,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from zmq.auth.thread import ThreadAuthenticator

    from ..link import Router
    from .access import AllowedClientSettings

_TICK: Final = 0.05
"""Seconds between two rounds of heartbeats, liveness checks and expiries."""
_BATCH: Final = 256
"""Frames read from one socket before the loop looks at the others: fairness."""
_QUERY_WORKERS: Final = 4
"""Threads that answer status and control queries (process submits and reads among them)."""
_STATUS_BACKLOG: Final = 256
"""Status and control queries waiting or being answered at most; more are refused as busy.

Eight (with one worker) refused most of 16 clients submitting processes at once
(benchmarks/web.py, H1: 227,448 refusals for 10 s of work)."""
_CLOSE_LINGER_MS: Final = 200
"""How long closing the ROUTER may wait to flush the last replies."""
_HEARTBEAT_MS: Final = 1000
"""ZMTP heartbeats on the ROUTER's connections: a silent one is dropped after three."""
_HOLD_RECOVERED_REPLY: Final = 30.0
"""Seconds a reply to a recovered request waits for its client to reconnect."""


class RuntimeSettings(Protocol):
    """The ``[runtime]`` table as the bridge reads it (`tierd.config.RuntimeConfig` is one)."""

    @property
    def name(self) -> str:
        """The runtime's name, in logs and thread names."""

    @property
    def endpoint(self) -> str:
        """Where the ROUTER binds; "" binds none (peers only)."""

    @property
    def events(self) -> str:
        """Where the PUB socket of live events binds; "" binds none."""

    @property
    def max_message_bytes(self) -> int:
        """The largest frame accepted or sent."""

    @property
    def dedup_window(self) -> float:
        """Seconds a network message id is remembered."""

    @property
    def curve_secret_key(self) -> str:
        """This runtime's CURVE key pair file; "" talks in the clear."""

    @property
    def curve_allowed_clients(self) -> str | Sequence[AllowedClientSettings]:
        """The public keys allowed to connect under CURVE, with their roles (see `Access.load`)."""


class BridgeSettings(Protocol):
    """What the bridge reads of a runtime's config (`tierd.config.Config` is one)."""

    @property
    def runtime(self) -> RuntimeSettings:
        """The ``[runtime]`` table."""

    @property
    def peers(self) -> Sequence[PeerSettings]:
        """The ``[[peers]]`` tables."""


class Bridge:
    """Connects a runtime to its clients and peers over ZeroMQ.

    Args:
        config: the runtime's config (``runtime`` and ``peers``).
        router: the runtime's router; inbound messages are routed with it.
        status: makes the status dict a client asks for; runs in a worker thread.
        control: runs a control operation ``(operation, arguments)`` a client asks
            for and returns its result; runs in the same worker thread. None
            refuses control frames.
        durable_levels: the runtime's durable levels: peers learn them from its
            pongs, and confirm a notification for one only once it is committed.
        followers: the runtime's event fan-out, which the PUB socket of
            ``runtime.events`` joins while a subscriber is connected.
    """

    def __init__(
        self,
        config: BridgeSettings,
        router: Router,
        status: Callable[[], dict[str, Any]],
        control: Callable[[str, dict[str, Any]], Any] | None = None,
        durable_levels: frozenset[int] = frozenset(),
        followers: Followers | None = None,
    ) -> None:
        runtime = config.runtime
        self.config = config
        self.endpoint = runtime.endpoint
        self.max_bytes = runtime.max_message_bytes
        self.log = get_logger(runtime=runtime.name, component="bridge")
        self.handoff = Handoff()
        self.rejections = Rejections(self.log)
        self.peers = [
            PeerLink(peer, self.handoff, self.rejections, self.log, self.max_bytes)
            for peer in config.peers
        ]
        self.inbound = InboundHandler(
            router,
            self.rejections,
            RecentIds(runtime.dedup_window),
            send_now=self._send_now,
            send_any_thread=self._send_now,  # thread-safe: the ROUTER has a lock
            ask_status=self._ask_status,
            ask_control=self._ask_control if control is not None else None,
            call_soon=self.handoff.call_soon,
            max_bytes=self.max_bytes,
            durable_levels=durable_levels,
        )
        self.access = Access()
        """Who may do what; loaded at `start` under CURVE (every connection may, without)."""
        self._status = status
        self._followers = followers
        self._control = control
        self._status_pending = 0
        self._status_worker = concurrent.futures.ThreadPoolExecutor(
            max_workers=_QUERY_WORKERS, thread_name_prefix=f"tierd-status-{runtime.name}"
        )
        self._context: zmq.Context[Any] | None = None
        self._authenticator: ThreadAuthenticator | None = None
        self._router_socket: zmq.Socket[Any] | None = None
        self._router_lock = threading.Lock()
        """Held by any thread for every call on the ROUTER (see the module docstring)."""
        self._recheck = False
        """The I/O thread called the ROUTER outside its drain and saw a frame waiting."""
        self._dealers: dict[zmq.Socket[Any], PeerLink] = {}
        self.events: EventPublisher | None = None
        """The PUB socket of live events, bound at `start` if ``runtime.events`` names one."""
        self._thread: threading.Thread | None = None
        self._running = False
        self.unroutable = 0
        """Frames for a client or peer that was gone; their senders time out on their side."""
        self._held: list[tuple[bytes, bytes, float]] = []
        """Replies to recovered requests whose client has not reconnected yet (I/O thread)."""

    def recovered_reply_route(self, identity: bytes) -> ReplyToSender:
        """The reply route of a request a durable level recovered from its journal.

        Its client (a stable ZeroMQ identity) may reconnect only after the
        reply is ready, so the reply is held and retried on every tick for
        up to `_HOLD_RECOVERED_REPLY` seconds instead of dropped at once.
        """
        return ReplyToSender(identity, self._send_when_back, self.max_bytes)

    def remember_ids(self, ids: list[tuple[str, float]]) -> None:
        """Treat these message ids (with epoch seconds) as accepted; call before `start`."""
        now, wall = time.monotonic(), time.time()
        for message_id, at in ids:
            self.inbound.remember(message_id, now - max(wall - at, 0.0))

    def remote_links(self) -> list[tuple[int, PeerLink]]:
        """Each remote level and the peer link that serves it, for `Router.add_remote`."""
        return [(level, peer) for peer in self.peers for level in peer.config.levels]

    # -- lifecycle (the caller's thread) ----------------------------------------

    def start(self) -> None:
        """Bind, connect to the peers, and start the I/O thread.

        Raises:
            BindError: the endpoint cannot be bound (in use, not an address here).
            ConfigError: a CURVE key file or directory cannot be read.
        """
        self._context = zmq.Context()
        try:
            keys = self._load_keys()
            if self.endpoint:
                self._router_socket = self._bind(keys)
            if self.config.runtime.events:
                self.events = EventPublisher(
                    self.config.runtime.events,
                    name=self.config.runtime.name,
                    context=self._context,
                    followers=self._followers,
                    keys=keys,
                )
                self.events.start()
            for peer in self.peers:
                dealer = self._connect(peer, keys)
                self._dealers[dealer] = peer
                peer.transmit = _transmitter(dealer)
        except BaseException:
            self._close_sockets()
            raise
        self._running = True
        self._thread = threading.Thread(
            target=self._loop, name=f"tierd-io-{self.config.runtime.name}", daemon=True
        )
        self._thread.start()
        self.log.info("bridge_started", endpoint=self.endpoint, peers=len(self.peers))

    def _load_keys(self) -> KeyPair | None:
        runtime = self.config.runtime
        if not runtime.curve_secret_key:
            return None
        keys = load_key_pair(runtime.curve_secret_key)
        if self.endpoint or runtime.events:
            assert self._context is not None
            self.access = Access.load(runtime.curve_allowed_clients)
            self.inbound.access = self.access
            self._authenticator = start_authenticator(self._context, self.access)
        return keys

    def _bind(self, keys: KeyPair | None) -> zmq.Socket[Any]:
        assert self._context is not None
        socket: zmq.Socket[Any] = self._context.socket(zmq.ROUTER)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a send to a vanished identity raises
        # No ROUTER_HANDOVER: a second connection with a connected client's routing
        # id is ignored by libzmq, so no one can take a client's replies over.
        # Heartbeats drop a dead connection within seconds, so a client that
        # reconnects after a network failure gets its routing id back.
        socket.setsockopt(zmq.HEARTBEAT_IVL, _HEARTBEAT_MS)
        socket.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3 * _HEARTBEAT_MS)
        # libzmq drops the connection of a frame over this; a frame between the
        # limit and this is refused by the codec with an answer, so the sender learns why.
        socket.setsockopt(zmq.MAXMSGSIZE, 2 * self.max_bytes + 4096)
        if keys is not None:
            serve_with_curve(socket, keys)
        try:
            socket.bind(self.endpoint)
        except zmq.ZMQError as error:
            socket.close(linger=0)
            raise BindError(self.endpoint, error.strerror) from error
        return socket

    def _connect(self, peer: PeerLink, keys: KeyPair | None) -> zmq.Socket[Any]:
        assert self._context is not None
        config = peer.config
        socket: zmq.Socket[Any] = self._context.socket(zmq.DEALER)
        socket.setsockopt(zmq.LINGER, 0)
        # A stable identity: after a reconnection, replies still find this connection.
        socket.setsockopt(zmq.ROUTING_ID, b"peer-" + os.urandom(8).hex().encode())
        socket.setsockopt(zmq.IMMEDIATE, 1)  # no queueing on a connection not yet up
        socket.setsockopt(zmq.RECONNECT_IVL, int(config.reconnect_interval * 1000))
        socket.setsockopt(zmq.RECONNECT_IVL_MAX, int(config.reconnect_interval_max * 1000))
        socket.setsockopt(zmq.MAXMSGSIZE, 2 * self.max_bytes + 4096)
        if config.server_key:
            assert keys is not None
            connect_with_curve(socket, keys, load_public_key(config.server_key))
        socket.connect(config.endpoint)
        return socket

    def stop_input(self) -> None:
        """Refuse new messages from the network; replies and acks still go out."""
        self.inbound.accepting = False

    def stop(self) -> None:
        """Stop the I/O thread, flush what it can, and close every socket."""
        if self._thread is not None:
            self.handoff.call_soon(self._exit)
            self._thread.join(timeout=5.0)
            self._thread = None
        self._status_worker.shutdown(wait=False, cancel_futures=True)
        self._close_sockets()
        self.log.info("bridge_stopped")

    def _close_sockets(self) -> None:
        if self.events is not None:
            self.events.stop()
        with self._router_lock:  # a daemon's reply may be on its way out right now
            router, self._router_socket = self._router_socket, None
        if router is not None:
            router.close(linger=_CLOSE_LINGER_MS)
        for dealer in self._dealers:
            dealer.close(linger=0)
        self._dealers.clear()
        if self._authenticator is not None:
            self._authenticator.stop()
            self._authenticator = None
        self.handoff.close()
        if self._context is not None:
            self._context.destroy(linger=0)  # closes any socket a failed start left behind
            self._context = None

    def _exit(self) -> None:
        self._running = False

    # -- the I/O thread ------------------------------------------------------------

    def _loop(self) -> None:
        self.handoff.claim()
        poller = zmq.Poller()
        wake_fd = self.handoff.fileno()
        poller.register(wake_fd, zmq.POLLIN)
        if self._router_socket is not None:
            # Its descriptor, not the socket: polling the socket calls it, without the lock.
            poller.register(self._router_socket.getsockopt(zmq.FD), zmq.POLLIN)
        for dealer in self._dealers:
            poller.register(dealer, zmq.POLLIN)
        drain_router = self._drain_router_curve if self.access.curve else self._drain_router
        next_tick = time.monotonic()
        more = True  # drain once first: frames may have come before the first poll
        while self._running:
            wait = 0 if more else max(int((next_tick - time.monotonic()) * 1000), 0)
            try:
                events = poller.poll(wait)
            except zmq.ZMQError:  # never seen in practice; the thread must not die of it
                self.log.exception("bridge_poll_failed")
                time.sleep(_TICK)
                continue
            readable = {fd_or_socket for fd_or_socket, _ in events} if events else ()
            self._guarded(self.handoff.run_pending, wake_fd in readable)
            # The ROUTER is drained on every round: its descriptor may have been
            # consumed by a reply sent from another thread, which then woke us.
            more = drain_router()
            for dealer, peer in self._dealers.items():
                if dealer in readable:
                    self._drain(dealer, peer.on_frames)
            now = time.monotonic()
            if now >= next_tick:
                for peer in self.peers:
                    self._guarded(peer.tick, now)
                self._guarded(self.inbound.tick, now)
                if self._held:
                    held, self._held = self._held, []
                    for identity, frame, until in held:
                        self._send_or_hold(identity, frame, until)
                next_tick = now + _TICK
        self._guarded(self.handoff.run_pending)  # the last replies queued before the stop
        stopping = Rejected("runtime is stopping")
        for peer in self.peers:
            self._guarded(peer.fail_waiting, stopping)  # no peer's answer can reach them now

    def _drain_router(self) -> bool:
        """Read up to `_BATCH` frames from the ROUTER under the lock, then handle them without it.

        Returns:
            Whether a frame may still be waiting: the loop must not sleep before it drains again.
        """
        batch: list[list[bytes]] = []
        with self._router_lock:
            router = self._router_socket
            if router is None:
                return False
            try:
                while len(batch) < _BATCH:
                    batch.append(router.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                pass
            except zmq.ZMQError:  # never seen in practice; logged, and the loop goes on
                self.log.exception("bridge_recv_failed")
        self._recheck = False
        handle = self.inbound.handle
        for frames in batch:
            self._guarded(handle, frames)
        if batch:
            self._guarded(self.inbound.flush)  # the batched acks of this drain, one frame each
        return len(batch) >= _BATCH or self._recheck

    def _drain_router_curve(self) -> bool:
        """`_drain_router` under CURVE: each frame with its sender's public key (``User-Id``)."""
        batch: list[tuple[list[bytes], str | None]] = []
        with self._router_lock:
            router = self._router_socket
            if router is None:
                return False
            try:
                while len(batch) < _BATCH:
                    parts = router.recv_multipart(zmq.NOBLOCK, copy=False)
                    batch.append(([part.bytes for part in parts], _user_id(parts[-1])))
            except zmq.Again:
                pass
            except zmq.ZMQError:
                self.log.exception("bridge_recv_failed")
        self._recheck = False
        handle = self.inbound.handle
        for frames, user_id in batch:
            self._guarded(handle, frames, user_id)
        return len(batch) >= _BATCH or self._recheck

    def _drain(self, socket: zmq.Socket[Any], handle: Callable[[list[bytes]], None]) -> None:
        for _ in range(_BATCH):
            try:
                frames = socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._guarded(handle, frames)

    def _guarded(self, step: Callable[..., Any], *args: Any) -> None:
        try:
            step(*args)
        except Exception:
            self.log.exception("bridge_step_failed", step=getattr(step, "__name__", repr(step)))

    def _send_now(self, identity: bytes, frame: bytes) -> None:
        """Send ``(identity, frame)`` on the ROUTER from any thread, without blocking."""
        error = self._router_send(identity, frame)
        if error is not None:  # EHOSTUNREACH: gone; EAGAIN: not reading its replies
            self.unroutable += 1
            self.log.debug("frame_unroutable", to=identity.hex()[:16], error=error.strerror)

    def _router_send(self, identity: bytes, frame: bytes) -> zmq.ZMQError | None:
        """Send on the ROUTER under its lock, from any thread; the error if it could not.

        Nothing is sent, and None returned, once the bridge has closed the ROUTER.
        """
        error: zmq.ZMQError | None = None
        with self._router_lock:
            router = self._router_socket
            if router is None:
                return None
            try:
                router.send_multipart([identity, frame], zmq.NOBLOCK)
            except zmq.ZMQError as failed:
                error = failed
            # The call may have consumed the descriptor's signal of a frame
            # that came meanwhile: make sure the I/O thread looks.
            waiting = _frame_waiting(router)
        if waiting:
            if self.handoff.in_owner():
                self._recheck = True
            else:
                self.handoff.wake()
        return error

    def _send_when_back(self, identity: bytes, frame: bytes) -> None:
        until = time.monotonic() + _HOLD_RECOVERED_REPLY
        self.handoff.call_soon(self._send_or_hold, identity, frame, until)

    def _send_or_hold(self, identity: bytes, frame: bytes, until: float) -> None:
        """Send a recovered request's reply, or hold it for a later tick; I/O thread only."""
        if self._router_send(identity, frame) is not None:
            if time.monotonic() < until:
                self._held.append((identity, frame, until))
            else:
                self.unroutable += 1

    def _ask_status(self, identity: bytes, query_id: str) -> None:
        if self._status_pending >= _STATUS_BACKLOG:
            busy = Rejected("too many status queries at once; retry in a moment")
            self._send_now(identity, encode_error(query_id, to_payload(busy)))
            return
        self._status_pending += 1
        self._status_worker.submit(self._answer_status, identity, query_id)

    def _ask_control(self, identity: bytes, query: ControlQuery) -> None:
        if self._status_pending >= _STATUS_BACKLOG:
            busy = Rejected("too many status and control queries at once; retry in a moment")
            self._send_now(identity, encode_error(query.query_id, to_payload(busy)))
            return
        self._status_pending += 1
        self._status_worker.submit(self._answer_control, identity, query)

    def _answer_status(self, identity: bytes, query_id: str) -> None:
        """Make the status in the worker thread, where waiting on orchestrators is fine."""
        try:
            frame = encode_status_reply(query_id, self._status(), self.max_bytes)
        except Exception as error:
            self.log.exception("status_failed")
            failed = Rejected(f"the status could not be made: {error}")
            frame = encode_error(query_id, to_payload(failed))
        self.handoff.call_soon(self._status_answered, identity, frame)

    def _answer_control(self, identity: bytes, query: ControlQuery) -> None:
        """Run a control operation in the worker thread; a failure is an error frame."""
        assert self._control is not None
        try:
            result = self._control(query.operation, query.arguments)
            frame = encode_control_reply(query.query_id, result, self.max_bytes)
        except TierdError as error:
            frame = encode_error(query.query_id, to_payload(error))
        except ValueError as error:
            frame = encode_error(query.query_id, to_payload(Rejected(str(error))))
        except Exception as error:
            self.log.exception("control_failed", operation=query.operation)
            failed = Rejected(f"the operation {query.operation!r} failed: {error}")
            frame = encode_error(query.query_id, to_payload(failed))
        self.log.info("control_operation", operation=query.operation)
        self.handoff.call_soon(self._status_answered, identity, frame)

    def _status_answered(self, identity: bytes, frame: bytes) -> None:
        self._status_pending -= 1
        self._send_now(identity, frame)


def _user_id(frame: zmq.Frame) -> str | None:
    """The CURVE public key libzmq stamped on a frame, if any."""
    try:
        user_id = frame.get("User-Id")
    except zmq.ZMQError:  # no such property: the frame came in the clear
        return None
    return user_id if isinstance(user_id, str) else None


def _frame_waiting(router: zmq.Socket[Any]) -> bool:
    """Whether a frame waits on ``router``; the caller holds the ROUTER's lock."""
    return bool(router.getsockopt(zmq.EVENTS) & zmq.POLLIN)  # type: ignore[operator, arg-type]


def _transmitter(dealer: zmq.Socket[Any]) -> Callable[[bytes], bool]:
    """A function that sends one frame on ``dealer`` without blocking; False if it cannot."""

    def transmit(frame: bytes) -> bool:
        try:
            dealer.send(frame, zmq.NOBLOCK)
        except zmq.ZMQError:  # EAGAIN: no connection up (IMMEDIATE) or the pipe is full
            return False
        return True

    return transmit
