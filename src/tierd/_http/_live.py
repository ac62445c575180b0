"""Live events for HTTP viewers: the sink the API adds to `Runtime.events`, and its viewers.

`LiveEvents` keeps one bounded log of the latest events, shared by every
viewer of ``GET /api/events``; a `Viewer` is a place in that log and the
topic prefixes it follows. `LiveEvents.publish` runs in whatever thread made
the event: it appends the event to the log once, however many watch, and
never waits. The server's event loop is woken at most once per `GATHER`
seconds, and then each viewer takes what is new since its place: viewers
that follow the same topics share one text of the batch, made once.

A viewer that falls more than `LOG_SIZE` events behind (a slow reader)
loses the oldest it had not read; they are counted, and the viewer is told
how many before its next event (``event: dropped``), so that it can read
the status again. The runtime never slows for it.

The sink is on `Runtime.events` only while someone watches: with no viewer,
an event costs the runtime nothing here.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import TYPE_CHECKING, Any, Final

from ..logging import get_logger

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from ..messaging.events import EventFanOut

LOG_SIZE: Final = 4096
"""Events kept for the viewers; one further behind than this loses the oldest, counted."""
GATHER: Final = 0.05
"""Seconds the server lets events gather before it sends them: a burst goes out in one write
per viewer, and the event loop wakes at most 20 times a second, whatever the event rate."""

_log = get_logger(component="http")
_JSON: Final = json.JSONEncoder(separators=(",", ":"), default=str, check_circular=False)
"""One line of JSON per event; what JSON has no form for (bytes...) is written as text."""


class _Pending:
    """One event in the log; its SSE text is made once, by the first viewer to send it."""

    __slots__ = ("event", "text", "topic")

    def __init__(self, topic: str, event: Mapping[str, Any]) -> None:
        self.topic = topic
        self.event = event
        self.text: str | None = None

    def sse(self) -> str:
        """The event as Server-Sent Events lines: ``id: seq``, ``event: type``, ``data: json``."""
        if self.text is None:
            data = self.event if "topic" in self.event else {**self.event, "topic": self.topic}
            seq = data.get("seq")
            kind = str(data.get("type", "event")).replace("\n", " ")
            head = f"id: {seq}\n" if isinstance(seq, int) else ""
            self.text = f"{head}event: {kind}\ndata: {_JSON.encode(data)}\n\n"
        return self.text


class Viewer:
    """One live stream: the topics it follows and its place in the shared log.

    Args:
        prefixes: the topic prefixes it follows; none follows every topic.
        start: the log position of the next event it will see.
    """

    def __init__(self, prefixes: Iterable[str], start: int) -> None:
        self.prefixes = tuple(prefixes)
        self.position = start
        """The log position of the next event to send it (under the hub's lock)."""
        self.dropped = 0
        """Events it lost, in all, by falling more than `LOG_SIZE` behind."""
        self.closed = False
        """True once the server stops: the stream ends."""
        self.ready = asyncio.Event()
        """Set in the event loop's thread when there is news; made there too."""

    def follows(self, topic: str) -> bool:
        """Whether ``topic`` starts with one of its prefixes (any topic, with none)."""
        return not self.prefixes or topic.startswith(self.prefixes)


class LiveEvents:
    """The HTTP server's `EventSink`: one shared log of recent events, read by every viewer.

    Args:
        fan_out: the runtime's events; this sink is on it while a viewer is open.
        size: how many events the log keeps.
    """

    def __init__(self, fan_out: EventFanOut, size: int = LOG_SIZE) -> None:
        self._fan_out = fan_out
        self._size = size
        self._lock = threading.Lock()
        self._log: list[_Pending] = []
        self._first = 0  # the position of _log[0]
        self._viewers: tuple[Viewer, ...] = ()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_pending = False
        self._closed = False
        self._texts: dict[tuple[int, int, tuple[str, ...]], bytes] = {}

    @property
    def viewers(self) -> int:
        """How many streams are open."""
        return len(self._viewers)

    def open(self, prefixes: Iterable[str]) -> Viewer:
        """Start a viewer at the newest event; call from the server's event loop.

        Raises:
            RuntimeError: no running event loop (a bug: only the server opens viewers).
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            viewer = Viewer(prefixes, self._first + len(self._log))
            self._loop = loop
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
            if last:  # nobody will read them: the next viewer starts at the newest anyway
                self._first += len(self._log)
                self._log.clear()
                self._texts.clear()
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
            self._wake_pending = True
        self._wake()

    def publish(self, topic: str, event: Mapping[str, Any]) -> None:
        """Append the event to the log, once for every viewer; never blocks, never raises."""
        pending = _Pending(topic, event)
        with self._lock:
            log = self._log
            log.append(pending)
            if len(log) >= 2 * self._size:  # trim in bulk: amortised O(1) per event
                cut = len(log) - self._size
                del log[:cut]
                self._first += cut
            wake = not self._wake_pending
            self._wake_pending = True
        if wake:
            self._wake()

    async def next_batch(self, viewer: Viewer, timeout: float) -> tuple[bytes | None, int]:
        """Wait up to ``timeout`` s for news; the SSE bytes of its new events, and how many it lost.

        The bytes are empty when only events of topics it does not follow came,
        and None when nothing came at all (time for a heartbeat). Viewers of the
        same topics get the same bytes object: it is encoded once.
        """
        if not self._has_news(viewer):
            try:
                await asyncio.wait_for(viewer.ready.wait(), timeout)
            except TimeoutError:
                return None, 0
        with self._lock:
            viewer.ready.clear()
            end = self._first + len(self._log)
            kept_from = max(self._first, end - self._size)
            start = max(viewer.position, kept_from)
            lost = start - viewer.position
            viewer.position = end
            key = (start, end, viewer.prefixes)
            text = self._texts.get(key)
            if text is None:
                window = self._log[start - self._first : end - self._first]
                text = "".join(p.sse() for p in window if viewer.follows(p.topic)).encode()
                if len(self._texts) > 64:
                    self._texts.clear()
                self._texts[key] = text
        viewer.dropped += lost
        return text, lost

    def _has_news(self, viewer: Viewer) -> bool:
        return viewer.closed or viewer.position < self._first + len(self._log)

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
            if self._has_news(viewer):
                viewer.ready.set()
