"""Live events: ``GET /api/events`` as Server-Sent Events, and the bounded sink behind it."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tierd._http._live import LiveEvents
from tierd.messaging.events import EventFanOut
from tierd.testing import wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.timeout(30)


def _events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Parse SSE lines into ``{"id", "event", "data"}`` dicts (comments are skipped)."""
    current: dict[str, Any] = {}
    for line in lines:
        if line.startswith(":"):
            continue
        if not line:
            if current:
                yield current
            current = {}
            continue
        name, _, value = line.partition(": ")
        current[name] = json.loads(value) if name == "data" else value


def _event(topic: str, kind: str, seq: int, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "topic": topic, "at": 1.0, "seq": seq, **fields}


def test_a_viewer_gets_the_events_of_its_topics_as_sse_and_no_others(served):
    """Each event is ``id: seq``, ``event: type``, ``data: json``; other topics are left out."""
    one = served()
    live = one.runtime.http.live
    with httpx.stream(
        "GET", f"{one.url}/api/events", params={"topic": ["process.held.", "alert."]}, timeout=10
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        assert next(lines).startswith(":")  # the opening comment: the stream is up
        wait_until(lambda: live.viewers == 1)
        events = one.runtime.events
        events.publish("process.held.01A", _event("process.held.01A", "step_progress", 3, p=0.5))
        events.publish("daemon.1.echo", _event("daemon.1.echo", "daemon_state", 1))
        events.publish("alert.disk", _event("alert.disk", "alert_firing", 1))
        received = _events(lines)
        first = next(received)
        assert first["id"] == "3"
        assert first["event"] == "step_progress"
        assert first["data"] == _event("process.held.01A", "step_progress", 3, p=0.5)
        assert next(received)["data"]["topic"] == "alert.disk"
    wait_until(lambda: live.viewers == 0, timeout=10)  # the sink leaves Runtime.events too


def test_events_from_submitted_processes_reach_a_viewer_of_every_topic(served):
    """With no topic, a viewer follows every event the runtime publishes."""
    one = served()
    with httpx.stream("GET", f"{one.url}/api/events", timeout=10) as response:
        lines = response.iter_lines()
        next(lines)
        wait_until(lambda: one.runtime.http.live.viewers == 1)
        one.runtime.events.publish("schedule.nightly", _event("schedule.nightly", "fired", 9))
        assert next(_events(lines))["data"]["topic"] == "schedule.nightly"


def test_a_quiet_stream_gets_a_heartbeat_comment(served, monkeypatch):
    """With no event for the heartbeat interval, the stream carries a comment line."""
    monkeypatch.setattr("tierd._http._app.HEARTBEAT", 0.05)
    one = served()
    with httpx.stream("GET", f"{one.url}/api/events", timeout=10) as response:
        lines = response.iter_lines()
        assert next(lines) == ": tierd live events"
        assert next(lines) == ""
        assert next(lines) == ": heartbeat"


def test_stopping_the_runtime_ends_open_streams(served):
    """A stream open while the runtime stops ends, so the stop is not held up by it."""
    one = served()
    ended = threading.Event()

    def watch() -> None:
        with httpx.stream("GET", f"{one.url}/api/events", timeout=10) as response:
            for _ in response.iter_lines():
                pass
        ended.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    wait_until(lambda: one.runtime.http.live.viewers == 1)
    one.runtime.stop(grace_period=0)
    assert ended.wait(10)


def test_a_slow_viewer_loses_the_oldest_events_counted_never_blocking_the_publisher():
    """A viewer further behind than the log keeps loses the oldest, counted; publish never waits."""
    fan_out = EventFanOut()
    live = LiveEvents(fan_out, size=3)

    async def scenario() -> tuple[bytes | None, int, int, bytes | None, bytes | None]:
        viewer = live.open(["a."])
        for seq in range(5):
            fan_out.publish("a.x", _event("a.x", "tick", seq))
        text, dropped = await live.next_batch(viewer, 1.0)
        fan_out.publish("b.y", _event("b.y", "tick", 99))  # not followed: sent nothing
        other, _ = await live.next_batch(viewer, 1.0)
        quiet, _ = await live.next_batch(viewer, 0.01)  # nothing at all: time for a heartbeat
        live.close(viewer)
        fan_out.publish("a.x", _event("a.x", "tick", 6))  # no viewer: the sink is off
        return text, dropped, viewer.dropped, other, quiet

    text, dropped, total, other, quiet = asyncio.run(scenario())
    assert (dropped, total, other, quiet) == (2, 2, b"", None)
    assert text is not None
    assert [line for line in text.splitlines() if line.startswith(b"id:")] == [
        b"id: 2", b"id: 3", b"id: 4"
    ]  # fmt: skip
    assert text.startswith(b'id: 2\nevent: tick\ndata: {"type":"tick","topic":"a.x","at":1.0')
    assert live.viewers == 0


def test_viewers_of_the_same_topics_share_one_text_of_a_batch():
    """Two viewers that follow the same prefixes get the very same text, made once."""
    fan_out = EventFanOut()
    live = LiveEvents(fan_out)

    async def scenario() -> tuple[bytes | None, bytes | None, bytes | None]:
        first, second, narrow = live.open([]), live.open([]), live.open(["b."])
        for seq in range(3):
            fan_out.publish("a.x", _event("a.x", "tick", seq))
        fan_out.publish("b.y", _event("b.y", "tock", 7))
        one, _ = await live.next_batch(first, 1.0)
        two, _ = await live.next_batch(second, 1.0)
        three, _ = await live.next_batch(narrow, 1.0)
        return one, two, three

    one, two, three = asyncio.run(scenario())
    assert one is two
    assert one is not None
    assert one.count(b"event: ") == 4
    assert three == b'id: 7\nevent: tock\ndata: {"type":"tock","topic":"b.y","at":1.0,"seq":7}\n\n'


def test_a_viewer_told_of_drops_gets_a_dropped_event_on_the_stream(served):
    """Over the wire, lost events are announced as ``event: dropped`` with how many."""
    one = served()
    with httpx.stream("GET", f"{one.url}/api/events", timeout=10) as response:
        lines = response.iter_lines()
        next(lines)
        wait_until(lambda: one.runtime.http.live.viewers == 1)
        for seq in range(20_000):  # far faster than the stream drains: more than a queue holds
            one.runtime.events.publish("process.k.1", _event("process.k.1", "tick", seq))
        kinds = set()
        for event in _events(lines):
            kinds.add(event["event"])
            if event["event"] == "dropped":
                assert event["data"]["dropped"] > 0
                break
    assert "dropped" in kinds
