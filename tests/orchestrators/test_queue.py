"""The level queue: ordering per lane, removal, requeue and its limit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tierd.errors import Rejected
from tierd.messaging.message import Address, Message
from tierd.orchestrators._queue import LevelQueue

SENDER = Address("sender", 0)


def _message(daemon: str, priority: int, payload: object = None) -> Message:
    return Message.notification(SENDER, Address(daemon, 1), payload, priority=priority)


@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(1, 20)), max_size=200))
def test_each_lane_pops_by_priority_then_arrival(items):
    """Every lane gives its messages most urgent first, and in arrival order within a priority."""
    queue = LevelQueue()
    for position, (daemon, priority) in enumerate(items):
        queue.put(_message(daemon, priority, position), None, 0.0)
    for daemon in "abc":
        expected = sorted(
            ((p, n) for n, (d, p) in enumerate(items) if d == daemon), key=lambda pair: pair
        )
        popped = []
        while (entry := queue.pop(daemon)) is not None:
            popped.append((entry.priority, entry.message.payload))
        assert popped == expected
    assert len(queue) == 0
    assert queue.depth_by_priority() == {}


@given(st.lists(st.integers(1, 20), min_size=1, max_size=100), st.data())
def test_removed_messages_never_come_out(priorities, data):
    """A message removed from the queue is never popped, and the depths stay right."""
    queue = LevelQueue()
    messages = [_message("a", p) for p in priorities]
    for message in messages:
        queue.put(message, None, 0.0)
    removed = data.draw(st.sets(st.sampled_from([m.id for m in messages])))
    for message_id in removed:
        assert queue.remove(message_id) is not None
        assert queue.remove(message_id) is None
    assert len(queue) == len(messages) - len(removed)
    assert sum(queue.depth_by_priority().values()) == len(queue)
    popped = {entry.message.id for entry in queue.drain("a")}
    assert popped == {m.id for m in messages} - removed


def test_requeue_restores_the_original_place():
    """A requeued entry comes out before later arrivals of the same priority."""
    queue = LevelQueue()
    first = queue.put(_message("a", 10, "first"), None, 0.0)
    queue.put(_message("a", 10, "second"), None, 0.0)
    assert queue.pop("a") is first
    queue.requeue(first)
    assert [e.message.payload for e in queue.drain("a")] == ["first", "second"]


def test_full_queue_rejects():
    """Beyond its limit the queue refuses with Rejected('queue full') and keeps what it had."""
    queue = LevelQueue(limit=2)
    queue.put(_message("a", 10), None, 0.0)
    queue.put(_message("b", 10), None, 0.0)
    with pytest.raises(Rejected, match="queue full"):
        queue.put(_message("a", 1), None, 0.0)
    assert len(queue) == 2


def test_has_waiting_and_depth_of_skip_removed_entries():
    """Lane views count only live messages."""
    queue = LevelQueue()
    kept = queue.put(_message("a", 3), None, 0.0)
    gone = queue.put(_message("a", 1), None, 0.0)
    queue.remove(gone.message.id)
    assert queue.has_waiting("a")
    assert queue.depth_of("a") == 1
    assert queue.pop("a") is kept
    assert not queue.has_waiting("a")


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_aging_moves_a_waiting_message_up_one_step_per_period():
    """With aging, a message that waited k periods competes as priority minus k."""
    clock = _Clock()
    queue = LevelQueue(aging=1.0, clock=clock)
    old = queue.put(_message("a", 12, "old low"), None, 0.0)
    clock.now = 1.5
    queue.put(_message("a", 10, "new normal"), None, 1.5)
    assert queue.pop("a").message.payload == "new normal"  # 12 - 1 = 11 > 10
    queue.put(_message("a", 10, "newer normal"), None, 1.5)
    clock.now = 2.0
    assert queue.pop("a") is old  # 12 - 2 = 10, and it arrived first
    assert queue.pop("a").message.payload == "newer normal"


def test_without_aging_priority_is_strict_however_long_a_message_waits():
    """Aging = 0 (the default): a low-priority message never passes a more urgent one."""
    clock = _Clock()
    queue = LevelQueue(clock=clock)
    queue.put(_message("a", 20, "background"), None, 0.0)
    clock.now = 10_000.0
    queue.put(_message("a", 19, "urgent"), None, clock.now)
    assert [e.message.payload for e in queue.drain("a")] == ["urgent", "background"]


@given(st.lists(st.tuples(st.integers(1, 20), st.floats(0, 100)), min_size=1, max_size=100))
def test_aging_pops_by_effective_priority_then_arrival(items):
    """With aging, each pop takes the least (priority - floor(waited / aging), arrival)."""
    clock = _Clock()
    queue = LevelQueue(aging=7.0, clock=clock)
    clock.now = 100.0
    arrivals = sorted(enqueued for _, enqueued in items)  # queued in time order, as in a level
    for position, ((priority, _), enqueued) in enumerate(zip(items, arrivals, strict=True)):
        queue.put(_message("a", priority, position), None, enqueued)

    def key(entry):
        return (entry.priority - int((clock.now - entry.enqueued_at) // 7.0), entry.sequence)

    popped = []
    while queue:
        expected = min(queue.entries(), key=key)
        assert queue.pop("a") is expected
        popped.append(expected.message.payload)
    assert sorted(popped) == list(range(len(items)))
