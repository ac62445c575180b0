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

from typing import TYPE_CHECKING, Any, Final, Protocol

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
