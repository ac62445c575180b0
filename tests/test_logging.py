"""Structured logs: JSON lines with the runtime's name, and trace ids carried across a relay."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING

import pytest
import structlog

import tierd
from tests.topology import daemon, level
from tierd.logging import configure

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Configure JSON logs at debug level into a buffer; put the defaults back afterwards."""
    buffer = io.StringIO()
    configure("json", "debug", stream=buffer)
    yield buffer
    structlog.reset_defaults()


def _records(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_json_lines_carry_runtime_and_the_trace_id_across_a_relay(json_lines, make_runtime):
    """Each line parses as JSON and names the runtime; relay@1 and echo@2 log one trace id."""
    rt = make_runtime(
        {
            "runtime": {"name": "logs"},
            "levels": [
                level(1, daemon("relay", "Relay", options={"to": "echo@2"})),
                level(2, daemon("echo", "Echo")),
            ],
        }
    )
    rt.request("relay@1", {"x": 1}, timeout=5)
    rt.stop()
    records = _records(json_lines)
    for record in records:
        assert record["runtime"] == "logs", record
        assert {"timestamp", "level", "event"} <= record.keys()
    received = [r for r in records if r["event"] == "message_received"]
    assert [(r["tier"], r["daemon"]) for r in received] == [(1, "relay"), (2, "echo")]
    assert received[0]["trace_id"] == received[1]["trace_id"]
    assert received[0]["message_id"] != received[1]["message_id"]
    assert {r["level"] for r in received} == {"debug"}
    trace = [r for r in records if r.get("trace_id") == received[0]["trace_id"]]
    seen = iter([(r["event"], r["tier"], r["daemon"]) for r in trace if "daemon" in r])
    # In causal order; message_queued appears only when the daemon was busy.
    expected = [
        ("message_received", 1, "relay"),
        ("message_dispatched", 1, "relay"),
        ("request_sent", 1, "relay"),
        ("message_received", 2, "echo"),
        ("message_dispatched", 2, "echo"),
        ("message_handled", 2, "echo"),
        ("message_handled", 1, "relay"),
    ]
    assert all(event in seen for event in expected), trace


def test_the_tier_level_does_not_overwrite_the_log_level(json_lines):
    """A logger bound to level=2 logs ``tier: 2`` and keeps ``level`` for the log level."""
    structlog.get_logger().bind(level=2).warning("something_happened")
    [record] = _records(json_lines)
    assert record.pop("timestamp")
    assert record == {"tier": 2, "level": "warning", "event": "something_happened"}


def test_debug_events_are_dropped_at_info_level():
    """At info level, per-message debug events write nothing."""
    buffer = io.StringIO()
    configure("json", "info", stream=buffer)
    try:
        log = structlog.get_logger().bind(level=1)
        log.debug("message_received", message_id="x")
        log.info("runtime_started")
        assert [json.loads(line)["event"] for line in buffer.getvalue().splitlines()] == [
            "runtime_started"
        ]
    finally:
        structlog.reset_defaults()


def test_a_handler_failure_logs_its_traceback_and_the_messages_ids(json_lines, make_runtime):
    """One error line: the traceback, message_id, trace_id, daemon and tier; self.log too."""
    rt = make_runtime({"levels": [level(1, daemon("chatty", "Chatty"))]})
    with pytest.raises(tierd.RemoteError, match="KeyError"):
        rt.request("chatty@1", "fail", timeout=5)
    rt.stop()
    records = _records(json_lines)
    [failed] = [r for r in records if r["event"] == "handler_failed"]
    [chat] = [r for r in records if r["event"] == "chatting"]
    assert failed["level"] == "error"
    assert (failed["daemon"], failed["tier"], failed["directive"]) == ("chatty", 1, "resume")
    assert failed["message_id"] == chat["message_id"]
    assert failed["trace_id"] == chat["trace_id"]
    frames = failed["exception"][0]["frames"]
    assert failed["exception"][0]["exc_type"] == "KeyError"
    assert any(frame["name"] == "handle" for frame in frames)
    assert all("locals" not in frame for frame in frames)  # payloads stay out of logs
    assert (chat["daemon"], chat["tier"], chat["payload"]) == ("chatty", 1, "fail")
