"""Unit tests of the orchestrator's pure parts: deadlines, restart policy, wait-for graph."""

from __future__ import annotations

import itertools
import weakref

import pytest

from tierd.actors.states import DaemonState, IllegalTransition, check_transition
from tierd.orchestrators.deadlines import DeadlineHeap
from tierd.orchestrators.deadlock import WaitForGraph
from tierd.orchestrators.supervision import RestartPolicy, RestartTracker


def test_deadlines_expire_in_time_order():
    """Only deadlines at or before now come out, earliest first."""
    heap: DeadlineHeap[str] = DeadlineHeap()
    for at, item in [(3.0, "c"), (1.0, "a"), (2.0, "b"), (9.0, "late")]:
        heap.add(at, item)
    assert list(heap.expired(3.0)) == ["a", "b", "c"]
    assert len(heap) == 1
    assert heap.next_at() == 9.0


def test_cancelled_deadlines_never_expire():
    """A cancelled deadline is skipped; cancelling twice is harmless."""
    heap: DeadlineHeap[int] = DeadlineHeap()
    deadlines = [heap.add(float(n), n) for n in range(10)]
    for deadline in deadlines[::2]:
        heap.cancel(deadline)
        heap.cancel(deadline)
    assert list(heap.expired(100.0)) == [1, 3, 5, 7, 9]
    assert len(heap) == 0


def test_compaction_keeps_every_live_deadline():
    """Rebuilding the heap after many cancellations loses no live deadline."""
    heap: DeadlineHeap[int] = DeadlineHeap()
    deadlines = [heap.add(float(n), n) for n in range(10_000)]
    for number, deadline in enumerate(deadlines):
        if number % 10:
            heap.cancel(deadline)
    assert len(heap._heap) < 5_000  # compacted, not just marked
    assert list(heap.expired(1e9)) == list(range(0, 10_000, 10))


def test_a_cancelled_deadline_lets_go_of_its_item():
    """Cancelling drops the heap's reference to the item at once, before any compaction."""

    class Item:
        pass

    heap: DeadlineHeap[Item] = DeadlineHeap()
    item = Item()
    kept = weakref.ref(item)
    deadline = heap.add(1.0, item)
    del item
    assert kept() is not None
    heap.cancel(deadline)
    assert kept() is None
    assert heap.next_at() is None


def test_restart_delays_grow_and_cap():
    """Delays grow by the multiplier up to max_delay, then the tracker gives up."""
    tracker = RestartTracker(
        RestartPolicy(initial_delay=0.1, multiplier=2, max_delay=0.3, max_restarts=4, window=60)
    )
    delays = [tracker.next_delay(float(t)) for t in range(5)]
    assert delays == [0.1, 0.2, 0.3, 0.3, None]


def test_restarts_outside_the_window_are_forgotten():
    """Crashes older than the window no longer count towards giving up."""
    tracker = RestartTracker(RestartPolicy(initial_delay=1, max_restarts=2, window=10))
    assert tracker.next_delay(0.0) == 1
    assert tracker.next_delay(1.0) == 2
    assert tracker.next_delay(2.0) is None
    assert tracker.next_delay(30.0) == 1


def test_wait_for_graph_finds_cycles():
    """Blocking closes no cycle until the chain leads back to the waiter."""
    graph = WaitForGraph()
    assert graph.block("a@1", "b@1") is None
    assert graph.block("b@1", "c@2") is None
    assert graph.block("c@2", "a@1") == ["c@2", "a@1", "b@1"]
    graph.unblock("b@1")
    assert graph.block("c@2", "a@1") is None


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (DaemonState.IDLE, DaemonState.BLOCKED),
        (DaemonState.BLOCKED, DaemonState.IDLE),
        (DaemonState.BLOCKED, DaemonState.ERROR),
        (DaemonState.ERROR, DaemonState.WORKING),
        (DaemonState.IDLE, DaemonState.IDLE),
    ],
)
def test_illegal_transitions_raise(current, new):
    """A transition outside the table raises IllegalTransition."""
    with pytest.raises(IllegalTransition, match=f"{current.name} -> {new.name}"):
        check_transition(current, new)


def test_legal_transitions_pass():
    """The lifecycle IDLE, WORKING, BLOCKED, WORKING, ERROR, IDLE is allowed."""
    path = [
        DaemonState.IDLE,
        DaemonState.WORKING,
        DaemonState.BLOCKED,
        DaemonState.WORKING,
        DaemonState.ERROR,
        DaemonState.IDLE,
    ]
    for current, new in itertools.pairwise(path):
        check_transition(current, new)
