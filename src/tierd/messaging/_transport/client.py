"""`Client`: talk to a running runtime over ZeroMQ from any Python program.

A `Client` holds one DEALER socket. ZeroMQ sockets must not be shared
between threads, so a `Client` is for one thread at a time; using it from
two threads at once raises `RuntimeError`. For many threads, give each
thread its own `Client` (they are cheap: one socket and one small ZeroMQ
context each), for example with `threading.local`.
"""

from __future__ import annotations

import builtins
import dataclasses
import math
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Final

import zmq

from ...errors import ConfigError, Rejected, RequestTimeout
from ..message import DEFAULT_TIMEOUT, Address, check_timeout, not_before_of, parse_priority
from .calls import Call, Calls, Window
from .codec import DEFAULT_MAX_MESSAGE_BYTES
from .event_wire import MAX_EVENT_BYTES, decode_event, subscriber_endpoint, subscription_prefixes
from .security import KeyPair, connect_with_curve, load_key_pair, load_public_key

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path
    from types import TracebackType

DEFAULT_ENDPOINT: Final = "tcp://127.0.0.1:5555"
"""Where `Client` and the ``tierd`` commands look for a runtime by default."""

ACK_TIMEOUT: Final = 5.0
"""Seconds `Client.send` waits for the runtime to accept a notification."""
SEND_WINDOW: Final = 1000
"""Messages `Client.send_many` keeps unconfirmed in flight by default."""
SUBSCRIBER_HWM: Final = 100_000
"""Events a subscriber's socket keeps unread before ZeroMQ drops its next ones."""


class Client:
    """A connection to a runtime's endpoint.

    Example::

        with tierd.Client("tcp://127.0.0.1:5555") as client:
            msg_id = client.send("recorder@1", {"n": 1}, priority="high")
            ids = client.send_many(("recorder@1", {"n": i}) for i in range(100_000))
            reply = client.request("echo@2", {"x": 1}, timeout=5.0)
            info = client.status()
            with client.events("process.", timeout=10) as events:   # live, until quiet
                for event in events:
                    print(event["type"], event.get("progress"))

    Args:
        endpoint: the runtime's ``runtime.endpoint``.
        server_key: the runtime's CURVE public key (a ``.key`` file, or the
            Z85 key itself as bytes); None talks in the clear.
        client_key: this client's key pair (a ``.key_secret`` file); its public
            key must be in the runtime's ``curve_allowed_clients``, with the
            ``operate`` role for `cancel`, `pause`, `resume`, `restart` and the
            dead-letter calls (a ``send`` key gets `Rejected` for those). With
            ``server_key`` and no ``client_key`` a throwaway key pair is used,
            which only a runtime that allows any key accepts.
        max_message_bytes: the largest frame sent or accepted.
        ack_timeout: seconds `send` waits for the runtime to accept a message
            (`send_many`: for the next confirm).
    """

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        *,
        server_key: str | Path | bytes | None = None,
        client_key: str | Path | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        ack_timeout: float = ACK_TIMEOUT,
    ) -> None:
        self.endpoint = endpoint
        self.max_bytes = max_message_bytes
        self.ack_timeout = check_timeout(ack_timeout, "ack_timeout")
        self._calls = Calls.for_client(max_message_bytes)
        self.address = self._calls.address
        """The sender address of this client's messages (level 0: outside every level)."""
        self._busy = threading.Lock()
        self._context: zmq.Context[Any] = zmq.Context()
        self._socket: zmq.Socket[Any] = self._context.socket(zmq.DEALER)
        self._recv_timeout_ms = -1
        self._curve: Curve | None = None
        """The socket's RCVTIMEO now; set only when a wait needs another value."""
        self.processes = ClientProcesses(self)
        """Submit, query and control the runtime's processes: the names of `Runtime.processes`."""
        self.schedules = ClientSchedules(self)
        """List, pause, resume and run the runtime's schedules: the names of `Runtime.schedules`."""
        try:
            self._curve = connect_dealer(
                self._socket, endpoint, max_message_bytes, server_key, client_key
            )
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the socket at once, dropping anything unsent; closing twice does nothing."""
        if not self._socket.closed:
            self._socket.close(linger=0)
        if not self._context.closed:
            self._context.term()

    # -- the calls ---------------------------------------------------------------

    def send(
        self,
        target: str | Address,
        payload: Any = None,
        *,
        priority: int | str = "normal",
        timeout: float = DEFAULT_TIMEOUT,
        wait: bool = False,
        delay: float | None = None,
        not_before: float | None = None,
    ) -> str:
        """Send a notification; return its id once the runtime has accepted it.

        Args:
            target: the recipient, ``"daemon@level"``.
            payload: any msgpack-able value.
            priority: a name (critical, high, normal, low, background) or 1..20.
            timeout: seconds the message may wait, for room (with ``wait``) and then in a
                queue, before it is dead-lettered as ``expired``.
            wait: if the level's queue is full, let the runtime hold the message
                until there is room, up to ``timeout``, instead of refusing it at once.
                The runtime admits waiting senders in arrival order; it does not poll.
            delay: seconds (0 to `MAX_DELAY`, 7 days) before the level hands it to its
                daemon; it is accepted (and journaled, on a durable level) at once and
                never delivered early. Its ``timeout`` in the queue counts from then.
            not_before: instead of ``delay``, an epoch time (by this machine's clock).

        Raises:
            Rejected: the runtime refused it; ``"queue full"`` when the level is
                full (with ``wait``: it stayed full for ``timeout``).
            RequestTimeout: the runtime did not answer within ``ack_timeout``
                (with ``wait``: ``timeout`` plus ``ack_timeout``).
            UnknownRecipient: no daemon answers to ``target``.
            ValueError: a bad address, priority, timeout (more than 0, finite, at
                most `MAX_TIMEOUT`) or delay; nothing was sent.
        """
        call = self._calls.send(
            target, payload, priority=priority, timeout=timeout,
            ack_timeout=self.ack_timeout, wait=wait,
            not_before=not_before_of(delay, not_before, time.time()),
        )  # fmt: skip
        with self._one_thread():
            return str(self._run(call))

    def send_many(
        self,
        items: Iterable[tuple[str | Address, Any]],
        *,
        priority: int | str = "normal",
        timeout: float = DEFAULT_TIMEOUT,
        window: int = SEND_WINDOW,
        delay: float | None = None,
    ) -> list[str]:
        """Send many notifications, pipelined; return every id once all are accepted.

        Up to ``window`` messages are in flight unconfirmed; the runtime confirms
        them in batches (one ``acks`` frame for many, after the group commit on a
        durable level). Items are sent in order, so a level handles those of
        one priority in the order given.

        Args:
            items: ``(target, payload)`` pairs; any iterable, read once, lazily.
            priority: of every message: a name or 1..20.
            timeout: seconds each message may wait in a queue.
            window: the most messages unconfirmed at once.
            delay: seconds before any of them is delivered (as `send`'s ``delay``).

        Returns:
            Each item's message id, in the order of ``items``.

        Raises:
            BatchRejected: some items were not accepted; ``.refused`` lists each
                with its index, id and error (`Rejected`, `UnknownRecipient`, or
                `RequestTimeout` if no confirm came within ``ack_timeout``: the
                runtime may have it), and every other item was accepted.
            ValueError: a bad priority, window or delay.
        """
        parse_priority(priority)
        batch = Window(window)
        options = {
            "priority": priority, "timeout": timeout, "ack_timeout": self.ack_timeout,
            "not_before": not_before_of(delay, None, time.time()),
        }  # fmt: skip
        with self._one_thread():
            pending = iter(items)
            for item in pending:
                call = batch.build(self._calls, item, **options)
                if call is None:
                    continue
                stalled = not self._put(call.data, self.ack_timeout)
                call.data = b""  # sent: the window keeps its id, not its frame
                while not stalled and batch.full:
                    stalled = not self._receive(self.ack_timeout)
                if stalled:
                    batch.give_up(self._calls, self.ack_timeout, pending)
                    break
            while batch.unconfirmed and self._receive(self.ack_timeout):
                pass
            batch.give_up(self._calls, self.ack_timeout)
        return batch.outcome()

    def request(
        self,
        target: str | Address,
        payload: Any = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        priority: int | str = "normal",
    ) -> Any:
        """Send a request and wait for its reply's payload.

        Raises:
            RequestTimeout: no reply within ``timeout``.
            RemoteError: the recipient's handler raised.
            UnknownRecipient: no level or daemon answers to ``target``.
            Deadlock, Cancelled, Rejected: as their names say.
            ValueError: a bad address, priority or timeout (more than 0, finite, at
                most `MAX_TIMEOUT`); nothing was sent.
        """
        call = self._calls.request(target, payload, timeout=timeout, priority=priority)
        with self._one_thread():
            return self._run(call)

    def status(self, *, timeout: float = 5.0) -> dict[str, Any]:
        """The runtime's levels, daemons, states, queue depths, counters and peers.

        Raises:
            RequestTimeout: no answer within ``timeout``.
            ValueError: a bad timeout; nothing was sent.
        """
        with self._one_thread():
            return dict(self._run(self._calls.status(self.endpoint, timeout)))

    def events(
        self, *prefixes: str, timeout: float | None = None, endpoint: str | None = None
    ) -> EventSubscription:
        """Follow the runtime's live events: an iterator of event dicts, until closed.

        Example::

            with client.events("process.import_class.", timeout=30) as events:
                for event in events:
                    print(event["type"], event.get("progress"))

        Args:
            prefixes: topic prefixes (``process.``, ``process.<kind>.<id>``,
                ``daemon.2.``...); none follows every event.
            timeout: seconds each ``next`` waits; the iteration ends when none
                came in time. None waits for ever.
            endpoint: the runtime's events endpoint; None asks the runtime
                (its status says where it publishes).

        Raises:
            ConfigError: the runtime publishes no events (``runtime.events`` is "").
            RequestTimeout: the runtime did not say where it publishes.
            ValueError: a prefix that is not a string, or a bad timeout.
        """
        if endpoint is None:
            endpoint = events_endpoint(self.status(), self.endpoint)
        return EventSubscription(endpoint, prefixes, timeout=timeout, curve=self._curve)

    def cancel(self, message_id: str, *, timeout: float = 5.0) -> bool:
        """Cancel a queued message (its requester gets `Cancelled`).

        A message already being handled is not interrupted: its reply is discarded.

        Returns:
            False if no level of the runtime holds the message (done, or unknown).

        Raises:
            RequestTimeout: no answer within ``timeout``.
        """
        return bool(self._control("cancel", {"id": message_id}, timeout))

    def pause(self, target: str | Address, *, timeout: float = 5.0) -> None:
        """Pause a daemon: it is handed nothing; its messages wait and still time out.

        Raises:
            UnknownRecipient: the runtime serves no such daemon.
            RequestTimeout: no answer within ``timeout``.
        """
        self._control("pause", {"target": str(Address.parse(target))}, timeout)

    def resume(self, target: str | Address, *, timeout: float = 5.0) -> None:
        """Resume a paused daemon.

        Raises:
            UnknownRecipient: the runtime serves no such daemon.
            RequestTimeout: no answer within ``timeout``.
        """
        self._control("resume", {"target": str(Address.parse(target))}, timeout)

    def restart(self, target: str | Address, *, timeout: float = 5.0) -> None:
        """Give a daemon a fresh instance: a given-up one comes back, a live one is replaced.

        Raises:
            UnknownRecipient: the runtime serves no such daemon.
            RequestTimeout: no answer within ``timeout``.
        """
        self._control("restart", {"target": str(Address.parse(target))}, timeout)

    def dead_letters(
        self, level: int | None = None, *, limit: int = 100, timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """The newest dead letters of one level or every level, oldest first.

        Each is a dict: ``id``, ``level``, ``reason``, ``detail``, ``at``,
        ``kind``, ``sender``, ``recipient``, ``priority``, ``attempts``,
        ``trace_id``, ``created_at``, ``payload``.

        Raises:
            UnknownRecipient: the runtime serves no level ``level``.
            RequestTimeout: no answer within ``timeout``.
        """
        result = self._control("dead_letters", {"level": level, "limit": limit}, timeout)
        return list(result)

    def replay_dead_letters(
        self, level: int | None = None, ids: list[str] | None = None, *, timeout: float = 5.0
    ) -> dict[str, str]:
        """Send dead letters again as new messages (new ids, zero attempts, fresh timeouts).

        Args:
            level: one level, or None for every level.
            ids: the message ids to replay; None replays every letter.
            timeout: seconds to wait for the runtime's answer.

        Returns:
            Each replayed message's old id and its new id. A letter the level
            refuses again stays dead.

        Raises:
            UnknownRecipient: the runtime serves no level ``level``.
            RequestTimeout: no answer within ``timeout``.
        """
        result = self._control("replay_dead_letters", {"level": level, "ids": ids}, timeout)
        return dict(result)

    def purge_dead_letters(
        self, level: int | None = None, ids: list[str] | None = None, *, timeout: float = 5.0
    ) -> int:
        """Forget dead letters (those in ``ids``, or all) of one level or every level; how many.

        Raises:
            UnknownRecipient: the runtime serves no level ``level``.
            RequestTimeout: no answer within ``timeout``.
        """
        return int(self._control("purge_dead_letters", {"level": level, "ids": ids}, timeout))

    def _control(self, operation: str, arguments: dict[str, Any], timeout: float) -> Any:
        with self._one_thread():
            return self._run(self._calls.control(operation, arguments, self.endpoint, timeout))

    # -- the socket --------------------------------------------------------------

    def _one_thread(self) -> _Exclusive:
        return _Exclusive(self._busy)

    def _run(self, call: Call) -> Any:
        """Send ``call``'s frame, then read frames until it settles; its outcome.

        The send never blocks past the call's timeout: without a connection (a
        refused CURVE handshake, no runtime) ZeroMQ would otherwise wait forever.

        Raises:
            TierdError: the call's error, or `RequestTimeout`.
        """
        deadline = time.monotonic() + call.timeout
        heard = self._calls.heard
        if not self._put(call.data, call.timeout):
            self._calls.forget(call)
            raise self._calls.timed_out(call, self.endpoint, runtime_answers=False)
        wait = call.timeout  # the whole timeout first: RCVTIMEO stays as it was set
        while not call.done:
            if not self._receive(wait):
                self._calls.forget(call)
                answers = self._calls.heard > heard or self._runtime_answers()
                raise self._calls.timed_out(call, self.endpoint, runtime_answers=answers)
            wait = deadline - time.monotonic()
        return call.outcome()

    def _put(self, data: bytes, timeout: float) -> bool:
        """Send one frame, waiting up to ``timeout`` for a connection; False if none came."""
        try:
            self._socket.send(data, zmq.NOBLOCK)
        except zmq.Again:  # no connection yet, or the send queue is full: wait for room
            if not self._socket.poll(max(int(timeout * 1000), 1), zmq.POLLOUT):
                return False
            self._socket.send(data, zmq.NOBLOCK)
        return True

    def _receive(self, timeout: float) -> bool:
        """Read one frame within ``timeout`` and settle what it answers; False if none came."""
        wait_ms = max(math.ceil(timeout * 1000), 1)
        # A blocking recv bounded by RCVTIMEO costs less than Socket.poll,
        # which builds a Poller on every call.
        if wait_ms != self._recv_timeout_ms:
            self._socket.setsockopt(zmq.RCVTIMEO, wait_ms)
            self._recv_timeout_ms = wait_ms
        try:
            data = self._socket.recv()
        except zmq.Again:
            return False
        self._calls.received(data)
        return True

    def _runtime_answers(self) -> bool:
        """Whether anything comes back to a ping within `PROBE_TIMEOUT` seconds."""
        ping = self._calls.ping()
        heard = self._calls.heard
        if not self._put(ping.data, 0.0):
            self._calls.forget(ping)
            return False  # not even connected
        deadline = time.monotonic() + ping.timeout
        while not ping.done and self._calls.heard == heard:
            if not self._receive(deadline - time.monotonic()):
                break
        self._calls.forget(ping)
        return self._calls.heard > heard  # a pong, or the runtime's own late answer


def connect_dealer(
    socket: zmq.Socket[Any],
    endpoint: str,
    max_bytes: int,
    server_key: str | Path | bytes | None,
    client_key: str | Path | None,
) -> Curve | None:
    """Set up a client's DEALER (identity, limits, CURVE) and connect it to ``endpoint``.

    `Client` and `AsyncClient` connect the same way through this.

    Returns:
        The CURVE keys it connected with (for the events socket), or None in the clear.
    """
    socket.setsockopt(zmq.LINGER, 0)
    # A stable routing id: after the runtime restarts and this socket
    # reconnects, the reply to a request a durable level kept still finds it.
    # It is a secret, unlike the name in the sender address that every message
    # shows, so that no one else can claim it (the runtime keeps the first
    # connection with a routing id and ignores a second).
    socket.setsockopt(zmq.ROUTING_ID, b"client-" + os.urandom(16).hex().encode())
    socket.setsockopt(zmq.MAXMSGSIZE, 2 * max_bytes + 4096)
    curve = None
    if server_key is not None:
        server_public = (
            server_key
            if isinstance(server_key, bytes)
            else load_public_key(server_key, "server_key")
        )
        if client_key is not None:
            keys = load_key_pair(client_key, "client_key")
        else:
            public, secret = zmq.curve_keypair()
            keys = KeyPair(public, secret)
        curve = Curve(keys, server_public)
        connect_with_curve(socket, keys, server_public)
    socket.connect(endpoint)
    return curve


@dataclasses.dataclass(frozen=True, slots=True)
class Curve:
    """The CURVE keys a client talks to its runtime with: its own pair, the runtime's key."""

    keys: KeyPair
    server_public: bytes


def connect_subscriber(
    socket: zmq.Socket[Any], endpoint: str, prefixes: tuple[str, ...], curve: Curve | None
) -> None:
    """Set up a client's SUB for live events (limits, CURVE, filters) and connect it.

    Raises:
        ValueError: a prefix is not a string.
    """
    filters = subscription_prefixes(prefixes)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.RCVHWM, SUBSCRIBER_HWM)
    socket.setsockopt(zmq.MAXMSGSIZE, MAX_EVENT_BYTES + 4096)
    if curve is not None:
        connect_with_curve(socket, curve.keys, curve.server_public)
    for prefix in filters:
        socket.setsockopt(zmq.SUBSCRIBE, prefix)
    socket.connect(endpoint)


def events_endpoint(status: dict[str, Any], runtime_endpoint: str) -> str:
    """Where to follow the events of the runtime whose ``status`` this is.

    Raises:
        ConfigError: the runtime publishes no events (its ``runtime.events`` is "").
    """
    events = status.get("events")
    if not isinstance(events, str) or not events:
        raise ConfigError(
            f"the runtime at {runtime_endpoint} publishes no events: "
            'set runtime.events (e.g. "tcp://127.0.0.1:5556") in its config'
        )
    return subscriber_endpoint(events, runtime_endpoint)


class EventSubscription:
    """Live events of a runtime, as an iterator of event dicts (from `Client.events`).

    Each ``next`` waits up to ``timeout`` seconds for the next event (None:
    for ever) and ends the iteration if none came. Close it (or use it as a
    context manager) when done. Events published before the subscription
    reached the runtime are not seen: read a status first, then apply events
    with a higher ``seq`` (docs/events.md).

    Args:
        endpoint: the runtime's events endpoint.
        prefixes: topic prefixes to follow; none: every event.
        timeout: seconds each ``next`` waits at most; None: no limit.
        curve: CURVE keys, as the client's.
    """

    def __init__(
        self,
        endpoint: str,
        prefixes: tuple[str, ...] = (),
        *,
        timeout: float | None = None,
        curve: Curve | None = None,
    ) -> None:
        if timeout is not None:
            check_timeout(timeout, "timeout")
        self.endpoint = endpoint
        self.timeout = timeout
        self.rejected = 0
        """Frames that were not an event (malformed, oversized...), skipped."""
        self._context: zmq.Context[Any] = zmq.Context()
        self._socket: zmq.Socket[Any] = self._context.socket(zmq.SUB)
        try:
            connect_subscriber(self._socket, endpoint, prefixes, curve)
        except BaseException:
            self.close()
            raise

    def __iter__(self) -> EventSubscription:
        return self

    def __next__(self) -> dict[str, Any]:
        event = self.receive(self.timeout)
        if event is None:
            raise StopIteration
        return event

    def receive(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next event, or None if none came within ``timeout`` seconds (None: wait)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            if not self._socket.poll(-1 if left is None else math.ceil(left * 1000)):
                return None
            event = decode_event(self._socket.recv_multipart(zmq.NOBLOCK))
            if event is not None:
                return event
            self.rejected += 1

    def __enter__(self) -> EventSubscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop following; closing twice does nothing."""
        if not self._socket.closed:
            self._socket.close(linger=0)
        if not self._context.closed:
            self._context.term()


_PROCESS_API: Final = 1
"""The version of the process operations' arguments this client sends (``v``)."""
_WAIT_POLL: Final = (0.02, 0.5)
"""`ClientProcesses.wait` polls the status from the first interval, doubling up to the second."""


class ClientProcesses:
    """The processes of the runtime a `Client` talks to; `tierd.Runtime.processes` over the wire.

    Example::

        with tierd.Client("tcp://127.0.0.1:5555") as client:
            pid = client.processes.submit("import_class", {"id": 123}, key="import-123")
            final = client.processes.wait(pid, timeout=600)

    Every method takes ``timeout``: seconds to wait for the runtime's answer.
    An unknown id raises `tierd.ProcessNotFound`; a refused argument or a control
    the process's state does not allow raises `tierd.Rejected` with the reason.
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    def _call(self, operation: str, arguments: dict[str, Any], timeout: float) -> Any:
        try:
            return self._client._control(  # noqa: SLF001 - the client owns the socket
                operation, {"v": _PROCESS_API, **arguments}, timeout
            )
        except Rejected as error:
            if error.reason.startswith("unknown control operation 'process_"):
                raise Rejected(
                    f"the runtime at {self._client.endpoint} does not run processes over the "
                    "wire (it is older than this client): upgrade it"
                ) from None
            raise

    def submit(
        self,
        kind: str,
        params: Any = None,
        *,
        priority: int | str = 10,
        key: str | None = None,
        correlation: dict[str, Any] | None = None,
        timeout: float = 10.0,
    ) -> str:
        """Submit a process; return its id once the runtime has stored it."""
        arguments = {"kind": kind, "params": params, "priority": priority, "key": key,
                     "correlation": correlation}  # fmt: skip
        return str(self._call("process_submit", arguments, timeout))

    def get(self, process_id: str, *, timeout: float = 5.0) -> dict[str, Any]:
        """The status document of a process."""
        return dict(self._call("process_get", {"id": process_id}, timeout))

    def list(
        self,
        *,
        status: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
        cursor: str | None = None,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """A page of processes, newest first: ``{"items": [...], "cursor": str | None}``."""
        arguments = {"status": status, "kind": kind, "since": since, "until": until,
                     "limit": limit, "cursor": cursor}  # fmt: skip
        return dict(self._call("process_list", arguments, timeout))

    def items(
        self,
        process_id: str,
        *,
        status: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """A page of a batch's items by index: ``{"items": [...], "cursor": str | None}``.

        Each item: ``{index, item, status, attempts, error, result}``.
        """
        arguments = {"id": process_id, "status": status, "cursor": cursor, "limit": limit}
        return dict(self._call("process_items", arguments, timeout))

    def history(self, process_id: str, *, timeout: float = 5.0) -> Any:
        """The process's events, oldest first."""
        return self._call("process_history", {"id": process_id}, timeout)

    def result(self, process_id: str, *, timeout: float = 5.0) -> Any:
        """The result of a completed process (`tierd.ProcessFailed` if it ended otherwise)."""
        return self._call("process_result", {"id": process_id}, timeout)

    def wait(self, process_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Wait for the process to finish; return its final status document.

        The client polls the status (every 20 ms at first, then up to every 0.5 s),
        so that a long wait never holds the runtime's control worker.

        Raises:
            RequestTimeout: it did not finish within ``timeout`` seconds.
            ProcessNotFound: no process has this id.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = _WAIT_POLL[0]
        while True:
            status = self.get(process_id)
            if status["status"] in {"completed", "failed", "cancelled", "timeout"}:
                return status
            if deadline is not None and time.monotonic() + interval > deadline:
                raise RequestTimeout(process_id, f"process {process_id}", timeout or 0.0)
            time.sleep(interval)  # polling the runtime: nothing here could announce it
            interval = min(interval * 2, _WAIT_POLL[1])

    def cancel(self, process_id: str, *, timeout: float = 5.0) -> None:
        """Cancel a process (pending or paused: at once; running: at its next boundary)."""
        self._call("process_cancel", {"id": process_id}, timeout)

    def pause(self, process_id: str, *, timeout: float = 5.0) -> None:
        """Pause a running process at its next step boundary."""
        self._call("process_pause", {"id": process_id}, timeout)

    def resume(self, process_id: str, *, timeout: float = 5.0) -> None:
        """Resume a paused process."""
        self._call("process_resume", {"id": process_id}, timeout)

    def retry(self, process_id: str, from_step: str | None = None, *, timeout: float = 5.0) -> None:
        """Run a finished process again, from ``from_step`` or its first unfinished step."""
        self._call("process_retry", {"id": process_id, "from_step": from_step}, timeout)

    def stats(
        self, kind: str | None = None, window: float = 86400.0, *, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Counts by status, success rate, durations and per-step figures over ``window`` s."""
        return dict(self._call("process_stats", {"kind": kind, "window": window}, timeout))

    def prune(self, older_than: float, status: str | None = None, *, timeout: float = 60.0) -> int:
        """Delete finished processes that finished over ``older_than`` seconds ago; how many."""
        arguments = {"older_than": older_than, "status": status}
        return int(self._call("process_prune", arguments, timeout))


class ClientSchedules:
    """The schedules of the runtime a `Client` talks to; `tierd.Runtime.schedules` over the wire.

    Example::

        with tierd.Client("tcp://127.0.0.1:5555") as client:
            fire = client.schedules.run_now("pending-translations")
            print(fire["process_id"])

    An unknown name raises `tierd.ScheduleNotFound`; a runtime with no
    schedules raises `tierd.Rejected` saying so.
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    def _call(self, operation: str, arguments: dict[str, Any], timeout: float) -> Any:
        try:
            return self._client._control(operation, arguments, timeout)  # noqa: SLF001 - the client owns the socket
        except Rejected as error:
            if error.reason.startswith("unknown control operation 'schedule_"):
                raise Rejected(
                    f"the runtime at {self._client.endpoint} has no schedule operations "
                    "(it is older than this client): upgrade it"
                ) from None
            raise

    def list(self, *, timeout: float = 5.0) -> builtins.list[dict[str, Any]]:
        """Every schedule: trigger, timezone, target, next fire, last fire and outcome, paused."""
        return builtins.list(self._call("schedule_list", {}, timeout))

    def pause(self, name: str, *, timeout: float = 5.0) -> dict[str, Any]:
        """Pause a schedule for every runtime sharing its store; its document."""
        return dict(self._call("schedule_pause", {"name": name}, timeout))

    def resume(self, name: str, *, timeout: float = 5.0) -> dict[str, Any]:
        """Resume a paused schedule from its next fire on; its document."""
        return dict(self._call("schedule_resume", {"name": name}, timeout))

    def run_now(self, name: str, *, timeout: float = 10.0) -> dict[str, Any]:
        """Fire a schedule once now; the fire (``outcome``, ``process_id`` or ``message_id``)."""
        return dict(self._call("schedule_run_now", {"name": name}, timeout))


class _Exclusive:
    """Holds a client's lock for one call; a second thread gets a clear error, not a mess."""

    __slots__ = ("_lock",)

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        if not self._lock.acquire(blocking=False):
            raise RuntimeError(
                "this tierd.Client is in use by another thread; give each thread its own Client"
            )

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()
