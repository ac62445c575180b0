"""The event seam: where a component hands the events it makes (DESIGN §12).

A process runner, a scheduler or a level calls `EventSink.publish` with a
topic (``process.<kind>.<id>``, ``daemon.<level>.<id>``, ``schedule.<name>``,
``alert.<name>``) and an event map (``type``, ``at``, ``seq`` and the type's
fields). The runtime's sink sends them on its PUB socket; `NO_EVENTS` drops
them, for a component that runs without a runtime. A sink never blocks and
never raises: an event that cannot be sent is counted and dropped, never
allowed to slow the work it describes.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Final, Protocol

from ..logging import get_logger

if TYPE_CHECKING:
    from collections.abc import Mapping


class EventSink(Protocol):
    """Takes events; called from any thread, returns at once."""

    def publish(self, topic: str, event: Mapping[str, Any]) -> None:
        """Hand one event on under ``topic``; never blocks, never raises."""


class _NoEvents:
    """The sink of a component with nobody listening: every event is dropped."""

    def publish(self, topic: str, event: Mapping[str, Any]) -> None:
        """Drop the event."""


NO_EVENTS: Final[EventSink] = _NoEvents()
"""The sink that drops every event."""

_log = get_logger(component="events")


class EventFanOut:
    """One sink that hands each event to every sink added to it (the runtime's sink).

    The runtime has one; its PUB socket, the HTTP server's live stream and any
    test recorder each `add` a sink. A sink that raises is logged once per
    event and does not keep the event from the others.
    """

    def __init__(self) -> None:
        self._sinks: tuple[EventSink, ...] = ()
        self._lock = threading.Lock()

    def add(self, sink: EventSink) -> None:
        """Hand every later event to ``sink`` too."""
        with self._lock:
            self._sinks = (*self._sinks, sink)

    def remove(self, sink: EventSink) -> None:
        """Stop handing events to ``sink``; a sink never added is ignored."""
        with self._lock:
            self._sinks = tuple(s for s in self._sinks if s is not sink)

    @property
    def active(self) -> bool:
        """Whether any sink is added: a hot path builds an event only when one would go somewhere.

        The PUB socket's sink is added only while a subscriber is connected.
        """
        return bool(self._sinks)

    def publish(self, topic: str, event: Mapping[str, Any]) -> None:
        """Hand the event to every sink, in the order they were added."""
        for sink in self._sinks:  # a snapshot: `add` replaces the tuple, never changes it
            try:
                sink.publish(topic, event)
            except Exception:  # noqa: BLE001 - a sink's bug must not stop the work it watches
                _log.exception("event sink failed", topic=topic, sink=type(sink).__name__)
