"""The runner publishes every stored event of a process, once committed, in seq order."""

from __future__ import annotations

import sqlite3
import threading
from typing import TYPE_CHECKING, Any

import pytest

from tests.process import kinds
from tests.process.kinds import HOOKS
from tierd.testing import wait_until

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.process.manual import Harness

pytestmark = pytest.mark.timeout(20)


class Recorder:
    """A sink that keeps every event, and checks each one is in the store already."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.unstored: list[dict[str, Any]] = []
        self.path: Any = None
        self._lock = threading.Lock()

    def publish(self, topic: str, event: Any) -> None:
        if self.path is not None:
            with sqlite3.connect(self.path) as db:  # the committed file, as another reader sees it
                row = db.execute(
                    "SELECT 1 FROM events WHERE process_id = ? AND seq = ?",
                    (event["process_id"], event["seq"]),
                ).fetchone()
            if row is None:
                self.unstored.append(dict(event))
        with self._lock:
            self.events.append((topic, dict(event)))

    def of(self, process_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for _, e in self.events if e["process_id"] == process_id]


def _make(harness: Callable[..., Harness], *classes: Any) -> tuple[Harness, Recorder]:
    sink = Recorder()
    h = harness(*classes, events=sink)
    sink.path = h.path
    return h, sink


def _published_matches_history(h: Harness, sink: Recorder, pid: str) -> list[str]:
    h.store.barrier().wait()
    history = h.runner.history(pid)
    # Published from the store's writer once each commit lands: just after the barrier.
    published = wait_until(lambda: len(sink.of(pid)) >= len(history) and sink.of(pid))
    assert [e["seq"] for e in published] == list(range(1, len(history) + 1))
    for stored, event in zip(history, published, strict=True):
        assert event["topic"] == f"process.{event['kind']}.{pid}"
        assert {k: event[k] for k in stored} == stored
    assert not sink.unstored, "an event was published before its commit"
    return [e["type"] for e in published]


def test_every_transition_of_a_process_is_published_in_order_once_stored(harness):
    """Submit to completed: one event per stored event, same fields, seq 1, 2, 3... no gap."""
    h, sink = _make(harness, kinds.Three)
    pid = h.runner.submit("three", 1)
    h.run_all()
    types = _published_matches_history(h, sink, pid)
    assert types[:3] == ["process_submitted", "process_started", "step_started"]
    assert types[-1] == "process_completed"
    assert types.count("step_completed") == 3
    assert h.runner.get(pid)["seq"] == len(types)


def test_retries_pause_resume_cancel_and_retry_are_published(harness):
    """Step retries, pause and resume, a pending cancel and a retry of a finished process."""
    h, sink = _make(harness, kinds.Flaky, kinds.Three)
    HOOKS["failures"] = 1
    flaky = h.runner.submit("flaky")
    h.run_all()
    h.advance(5)  # the retry's backoff
    h.run_all()
    assert "step_retrying" in _published_matches_history(h, sink, flaky)

    three = h.runner.submit("three", 1)
    h.executor.run_next()
    h.runner.pause(three)
    h.run_all()
    h.runner.resume(three)
    h.run_all()
    h.runner.retry(three, from_step="text")
    h.run_all()
    types = _published_matches_history(h, sink, three)
    for wanted in ("process_paused", "process_resumed", "process_retried"):
        assert wanted in types
    assert types.count("process_completed") == 2


class OneAtATime(kinds.Three):
    """Three, one process at a time: a second submit waits, pending."""

    kind = "one_at_a_time"
    max_concurrent = 1


def test_a_pending_process_cancelled_is_published(harness):
    """A process cancelled before it started: submitted, then cancelled."""
    h, sink = _make(harness, OneAtATime)
    h.runner.submit("one_at_a_time", 1)  # takes the only slot
    pid = h.runner.submit("one_at_a_time", 2)
    h.runner.cancel(pid)
    assert _published_matches_history(h, sink, pid) == ["process_submitted", "process_cancelled"]


def test_progress_events_are_coalesced_to_one_a_second_and_the_latest_is_carried(harness):
    """Beats within a second make one event; the next beat after the window carries the latest."""
    h, sink = _make(harness, kinds.Long)
    pid = h.runner.submit("long")
    HOOKS["long"] = lambda ctx, i: h.clock.advance(0.4)  # beats at 0, 0.4, 0.8 and 1.2 s
    h.run_all()
    _published_matches_history(h, sink, pid)
    assert _progress(sink, pid) == [0.25, 1.0]


def test_progress_left_in_a_window_is_published_by_the_sweep(harness):
    """A step that goes quiet after a coalesced beat: the sweep after the window publishes it."""
    h, sink = _make(harness, kinds.Long)
    pid = h.runner.submit("long")
    seen: list[list[float]] = []

    def quiet(ctx: Any, i: int) -> None:
        if i == 1:  # 0.5 was coalesced (0.25 went out at once); a second passes with no beat
            h.advance(1.0)
            seen.append(wait_until(lambda: _progress(sink, pid)[1:] and _progress(sink, pid)))

    HOOKS["long"] = quiet
    h.run_all()
    assert seen == [[0.25, 0.5]]
    _published_matches_history(h, sink, pid)


def _progress(sink: Recorder, pid: str) -> list[float]:
    return [e["progress"] for e in sink.of(pid) if e["type"] == "step_progress"]


def test_a_batch_publishes_its_events_in_order_once_stored(harness):
    """A tierd.Batch: its stored events (items step, progress, completion) are all published."""
    h, sink = _make(harness, kinds.Squares)
    pid = h.runner.submit("squares", {"count": 12})
    h.run_all()
    types = _published_matches_history(h, sink, pid)
    assert types[0] == "process_submitted"
    assert types[-1] == "process_completed"
