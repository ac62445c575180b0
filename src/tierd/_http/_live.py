"""Live events for HTTP viewers: the sink the API adds to `Runtime.events`, and its viewers.

Each viewer of ``GET /api/events`` gets a `Viewer`: the topic prefixes it
follows and a bounded queue. `LiveEvents.publish` runs in whatever thread
made the event: it appends to the queue of every viewer that follows the
topic and never waits. A viewer whose queue is full (a slow reader) loses
the event, counted, and is told how many it lost before its next event
(``event: dropped``), so that it can read the status again. The server's
event loop is woken once per `GATHER` seconds at most, not once per event
per viewer: events that come meanwhile go out together.

The sink is on `Runtime.events` only while someone watches: with no viewer,
an event costs the runtime nothing here.
"""

from __future__ import annotations

import asyncio
import collections
import json
import threading
from typing import TYPE_CHECKING, Any, Final

from ..logging import get_logger

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from ..messaging.events import EventFanOut

VIEWER_QUEUE: Final = 1000
"""Events a viewer may have waiting; past that, new ones are dropped and counted."""
GATHER: Final = 0.05
"""Seconds the server lets events gather before it sends them: a burst goes out in one write
per viewer, and the event loop wakes at most 20 times a second, whatever the event rate."""

_log = get_logger(component="http")


class _Pending:
    """One event waiting in viewers' queues; its SSE text is made once, by the first to send it."""

    __slots__ = ("event", "text", "topic")

    def __init__(self, topic: str, event: Mapping[str, Any]) -> None:
        self.topic = topic
        self.event = event
        self.text: str | None = None

    def sse(self) -> str:
        """The event as Server-Sent Events lines: ``id: seq``, ``event: type``, ``data: json``."""
        if self.text is None:
            data = dict(self.event)
            data.setdefault("topic", self.topic)
            lines = []
            if isinstance(data.get("seq"), int):
                lines.append(f"id: {data['seq']}")
            kind = str(data.get("type", "event")).replace("\n", " ")
            lines.append(f"event: {kind}")
            lines.append(f"data: {json.dumps(data, default=str, separators=(',', ':'))}")
            self.text = "\n".join(lines) + "\n\n"
        return self.text


class Viewer:
    """One live stream's share of the events: its topics and its bounded queue.

    Args:
        prefixes: the topic prefixes it follows; none follows every topic.
        limit: events it may have waiting.
    """

    def __init__(self, prefixes: Iterable[str], limit: int = VIEWER_QUEUE) -> None:
        self.prefixes = tuple(prefixes)
        self.limit = limit
        self.dropped = 0
        """Events it lost, in all, because its queue was full."""
        self.closed = False
        """True once the server stops: the stream ends."""
        self._queue: collections.deque[_Pending] = collections.deque()
        self._unreported = 0
        self.ready = asyncio.Event()
        """Set in the event loop's thread when it has news; made there too."""

    def follows(self, topic: str) -> bool:
        """Whether ``topic`` starts with one of its prefixes (any topic, with none)."""
        return not self.prefixes or topic.startswith(self.prefixes)

    @property
    def has_news(self) -> bool:
        """Whether it has events or drops to send, or its stream must end."""
        return bool(self._queue) or self._unreported > 0 or self.closed

    def offer(self, pending: _Pending) -> bool:
        """Queue one event (under the hub's lock); False if it was dropped."""
        if len(self._queue) >= self.limit:
            self.dropped += 1
            self._unreported += 1
            return False
        self._queue.append(pending)
        return True

    def take(self) -> tuple[list[_Pending], int]:
        """Everything waiting and the drops not reported yet (under the hub's lock)."""
        taken = list(self._queue)
        self._queue.clear()
        unreported, self._unreported = self._unreported, 0
        self.ready.clear()
        return taken, unreported


class LiveEvents:
    """The HTTP server's `EventSink`: hands each event to the viewers that follow its topic.

    Args:
        fan_out: the runtime's events; this sink is on it while a viewer is open.
        limit: each viewer's queue.
    """

    def __init__(self, fan_out: EventFanOut, limit: int = VIEWER_QUEUE) -> None:
        self._fan_out = fan_out
        self._limit = limit
        self._lock = threading.Lock()
        self._viewers: tuple[Viewer, ...] = ()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_pending = False
        self._closed = False

    @property
    def viewers(self) -> int:
        """How many streams are open."""
        return len(self._viewers)

    def open(self, prefixes: Iterable[str]) -> Viewer:
        """Start a viewer; call from the server's event loop.

        Raises:
            RuntimeError: no running event loop (a bug: only the server opens viewers).
        """
        viewer = Viewer(prefixes, self._limit)
        with self._lock:
            self._loop = asyncio.get_running_loop()
            first = not self._viewers
            self._viewers = (*self._viewers, viewer)
            viewer.closed = self._closed
        if first:
            self._fan_out.add(self)
        return viewer

    def close(self, viewer: Viewer) -> None:
        """Forget a viewer whose stream ended; the last one takes the sink off the runtime."""
        with self._lock:
            self._viewers = tuple(v for v in self._viewers if v is not viewer)
            last = not self._viewers
        if last:
            self._fan_out.remove(self)
        if viewer.dropped:
            _log.info("events_viewer_dropped", dropped=viewer.dropped)

    def shutdown(self) -> None:
        """End every stream (the server is stopping); from any thread."""
        with self._lock:
            self._closed = True
            for viewer in self._viewers:
                viewer.closed = True
        self._wake()

    def publish(self, topic: str, event: Mapping[str, Any]) -> None:
        """Queue the event for every viewer that follows ``topic``; never blocks, never raises."""
        pending = _Pending(topic, event)
        with self._lock:
            queued = False
            for viewer in self._viewers:
                if viewer.follows(topic):
                    queued = viewer.offer(pending) or queued
            wake = queued and not self._wake_pending
            if wake:
                self._wake_pending = True
        if wake:
            self._wake()

    async def next_batch(self, viewer: Viewer, timeout: float) -> tuple[list[str], int]:
        """Wait up to ``timeout`` s for events; their SSE texts, and how many were dropped.

        Returns ``([], 0)`` when nothing came (time for a heartbeat) or the server stops.
        """
        if not viewer.has_news:
            try:
                await asyncio.wait_for(viewer.ready.wait(), timeout)
            except TimeoutError:
                return [], 0
        with self._lock:
            taken, dropped = viewer.take()
        return [pending.sse() for pending in taken], dropped

    def _wake(self) -> None:
        loop = self._loop
        if loop is None:
            self._wake_pending = False
            return
        try:
            loop.call_soon_threadsafe(loop.call_later, GATHER, self._set_ready)
        except RuntimeError:  # the loop has closed: the server stopped
            self._wake_pending = False

    def _set_ready(self) -> None:
        """In the event loop: wake every viewer with something to send."""
        with self._lock:
            self._wake_pending = False
            viewers = self._viewers
        for viewer in viewers:
            if viewer.has_news:
                viewer.ready.set()
