"""`EventPublisher`: the runtime's PUB socket (``runtime.events``), fed by a bounded queue.

It is an `EventSink`: `publish` appends the event to a bounded queue and
returns at once, from any thread. One thread of its own owns the socket (an
XPUB, so that it sees subscriptions come and go), encodes each event
(`event_wire.encode_event`) and sends it without blocking. It joins the
runtime's `EventFanOut` while at least one subscriber is connected and
leaves it when the last one goes, so a runtime nobody follows builds no
events on its hot paths (`EventFanOut.active`). Nothing that publishes ever
waits for a subscriber:

- the queue full (the publisher thread is behind): the event is dropped and
  counted in `dropped` (``tierd_events_dropped_total``);
- a subscriber that does not read: ZeroMQ queues up to ``SNDHWM`` events for
  it and drops its next ones, for that subscriber alone; the others get every
  event. ZeroMQ does not tell the publisher which events one subscriber
  lost: that subscriber sees a gap in a process's ``seq`` and reads its
  status again (docs/events.md).
"""

from __future__ import annotations

import collections
import contextlib
import socket as stdlib_socket
import threading
from typing import TYPE_CHECKING, Any, Final, Protocol

import zmq

from ...errors import BindError
from ...logging import get_logger
from .event_wire import encode_event
from .security import serve_with_curve

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..events import EventSink
    from .security import KeyPair

QUEUE_SIZE: Final = 10_000
"""Events waiting for the publisher thread at most; more are dropped and counted."""
SEND_HWM: Final = 10_000
"""Events ZeroMQ queues per subscriber before it drops that subscriber's next ones."""
GATHER: Final = 0.002
"""Seconds the thread lets events gather after a round of sends: one wake-up per round, not
per event, so that a busy runtime's threads are not interrupted for each event."""
_STOP_TIMEOUT: Final = 2.0
"""Seconds `EventPublisher.stop` waits for the thread to send what is queued."""


class Followers(Protocol):
    """Where the publisher adds itself while it has subscribers (`EventFanOut` is one)."""

    def add(self, sink: EventSink) -> None:
        """Hand later events to ``sink`` too."""

    def remove(self, sink: EventSink) -> None:
        """Stop handing events to ``sink``."""


class EventPublisher:
    """Sends every event it is given on an XPUB socket bound at ``endpoint``.

    Args:
        endpoint: where to bind (``runtime.events``).
        name: the runtime's name, for logs and the thread's name.
        context: the ZeroMQ context (the bridge's, so its CURVE authenticator
            checks subscribers as it checks clients).
        followers: the fan-out it joins while a subscriber is connected; None:
            the caller publishes to it directly, always.
        keys: this runtime's CURVE key pair; None publishes in the clear.
        queue_size: events waiting for the thread at most.
        send_hwm: events queued per subscriber at most.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        name: str,
        context: zmq.Context[Any],
        followers: Followers | None = None,
        keys: KeyPair | None = None,
        queue_size: int = QUEUE_SIZE,
        send_hwm: int = SEND_HWM,
    ) -> None:
        self.endpoint = endpoint
        self.address = ""
        """The endpoint bound (what ``tierd status`` reports); "" until `start`."""
        self.published = 0
        """Events handed to the socket (written by the publisher thread only)."""
        self.subscriptions: frozenset[bytes] = frozenset()
        """The topic prefixes subscribed to now (written by the publisher thread only)."""
        self._wanted: tuple[str, ...] = ()
        """The same, as text: an event no prefix matches is skipped before it is encoded."""
        self._dropped = 0
        self._dropped_lock = threading.Lock()
        self._queue: collections.deque[tuple[str, Mapping[str, Any]]] = collections.deque()
        self._limit = queue_size
        self._reader, self._writer = stdlib_socket.socketpair()
        self._reader.setblocking(False)  # noqa: FBT003 - the stdlib's signature
        self._writer.setblocking(False)  # noqa: FBT003
        self._signalled = False
        self._running = False
        self._stopped = threading.Event()
        self._context = context
        self._followers = followers
        self._keys = keys
        self._send_hwm = send_hwm
        self._socket: zmq.Socket[Any] | None = None
        self._thread: threading.Thread | None = None
        self._name = name
        self.log = get_logger(runtime=name, component="events")

    @property
    def dropped(self) -> int:
        """Events dropped: the queue was full, or an event could not be encoded or sent."""
        return self._dropped

    def start(self) -> None:
        """Bind the socket and start the thread that sends.

        Raises:
            BindError: the endpoint cannot be bound (in use, not an address here).
        """
        socket: zmq.Socket[Any] = self._context.socket(zmq.XPUB)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.SNDHWM, self._send_hwm)
        if self._keys is not None:
            serve_with_curve(socket, self._keys)
        try:
            socket.bind(self.endpoint)
        except zmq.ZMQError as error:
            socket.close(linger=0)
            self._close_wakeup()
            raise BindError(self.endpoint, error.strerror) from error
        self.address = socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self._socket = socket  # the thread's alone from here on (Thread.start is a barrier)
        self._running = True
        self._thread = threading.Thread(
            target=self._send_forever, name=f"tierd-events-{self._name}", daemon=True
        )
        self._thread.start()
        self.log.info("events_started", endpoint=self.address)

    def publish(self, topic: str, event: Mapping[str, Any]) -> None:
        """Queue one event for the socket; drop and count it if the queue is full."""
        if len(self._queue) >= self._limit:
            with self._dropped_lock:
                self._dropped += 1
            return
        self._queue.append((topic, event))  # deque.append is atomic
        if not self._signalled:
            self._signalled = True  # before the write: whoever sees True knows a byte is coming
            with contextlib.suppress(BlockingIOError, OSError):  # full: the thread is awake
                self._writer.send(b"\0")

    def stop(self) -> None:
        """Send what is queued (for up to a moment), then close the socket."""
        thread, self._thread = self._thread, None
        self._running = False
        self._stopped.set()
        if self._followers is not None:
            self._followers.remove(self)
        if thread is not None:
            with contextlib.suppress(OSError):
                self._writer.send(b"\0")
            thread.join(timeout=_STOP_TIMEOUT)
        if thread is None or not thread.is_alive():
            if self._socket is not None:
                self._socket.close(linger=0)
                self._socket = None
            self._close_wakeup()

    def _close_wakeup(self) -> None:
        self._reader.close()
        self._writer.close()

    # -- the publisher thread --------------------------------------------------------

    def _send_forever(self) -> None:
        socket = self._socket
        assert socket is not None
        poller = zmq.Poller()
        poller.register(socket, zmq.POLLIN)
        poller.register(self._reader.fileno(), zmq.POLLIN)
        while self._running:
            ready = dict(poller.poll())
            if socket in ready:
                self._read_subscriptions(socket)
            with contextlib.suppress(BlockingIOError, OSError):
                while self._reader.recv(4096):
                    pass
            self._signalled = False  # after draining, before taking: nothing waits unseen
            if self._send_queued(socket):
                self._stopped.wait(GATHER)
        self._send_queued(socket)

    def _send_queued(self, socket: zmq.Socket[Any]) -> int:
        """Send every queued event; return how many were taken."""
        queued = self._queue
        wanted = self._wanted
        taken = 0
        while queued:
            taken += 1
            topic, event = queued.popleft()
            if not topic.startswith(wanted):
                continue  # nobody subscribed to it: not even encoded
            try:
                frames = encode_event(topic, event)
            except (TypeError, ValueError, OverflowError) as error:
                self._drop()
                self.log.error("event_not_encodable", topic=topic, error=str(error))
                continue
            try:
                socket.send_multipart(frames, zmq.NOBLOCK)
            except zmq.ZMQError as error:  # an XPUB drops over its HWM itself: this is rare
                self._drop()
                self.log.warning("event_send_failed", topic=topic, error=error.strerror)
                continue
            self.published += 1
        return taken

    def _read_subscriptions(self, socket: zmq.Socket[Any]) -> None:
        """Track the prefixes subscribed to; join or leave the followers as they come and go."""
        prefixes = set(self.subscriptions)
        while True:
            try:
                frame = socket.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            if not frame or frame[0] not in {0, 1}:
                continue  # a SUB sends only these; anything else is ignored
            if frame[0] == 1:
                prefixes.add(frame[1:])
            else:
                prefixes.discard(frame[1:])
        was, self.subscriptions = bool(self.subscriptions), frozenset(prefixes)
        self._wanted = tuple(prefix.decode(errors="replace") for prefix in prefixes)
        if self._followers is not None and was != bool(prefixes):
            if prefixes:
                self._followers.add(self)
            else:
                self._followers.remove(self)
            self.log.debug("events_followed", subscribed=bool(prefixes))

    def _drop(self) -> None:
        with self._dropped_lock:
            self._dropped += 1
