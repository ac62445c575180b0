"""The event seam: a fan-out hands each event to every sink, and a failing sink harms none."""

from __future__ import annotations

from typing import Any

import pytest

from tierd.messaging.events import NO_EVENTS, EventFanOut

pytestmark = pytest.mark.timeout(10)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def publish(self, topic: str, event: Any) -> None:
        self.events.append((topic, dict(event)))


class Broken:
    def publish(self, topic: str, event: Any) -> None:
        raise RuntimeError("sink bug")


def test_every_sink_gets_every_event_in_order() -> None:
    first, second = Recorder(), Recorder()
    fan_out = EventFanOut()
    fan_out.add(first)
    fan_out.add(second)
    fan_out.publish("process.a.1", {"type": "process_submitted", "seq": 1})
    fan_out.publish("process.a.1", {"type": "process_started", "seq": 2})
    assert [e["seq"] for _, e in first.events] == [1, 2]
    assert second.events == first.events


def test_a_failing_sink_does_not_keep_the_event_from_the_others() -> None:
    recorder = Recorder()
    fan_out = EventFanOut()
    fan_out.add(Broken())
    fan_out.add(recorder)
    fan_out.publish("schedule.nightly", {"type": "schedule_fired"})
    assert recorder.events == [("schedule.nightly", {"type": "schedule_fired"})]


def test_a_removed_sink_gets_nothing_more() -> None:
    recorder = Recorder()
    fan_out = EventFanOut()
    fan_out.add(recorder)
    fan_out.remove(recorder)
    fan_out.remove(Recorder())  # never added: ignored
    fan_out.publish("daemon.1.worker", {"type": "daemon_state"})
    assert recorder.events == []


def test_no_events_drops_silently() -> None:
    NO_EVENTS.publish("process.a.1", {"type": "process_submitted"})
