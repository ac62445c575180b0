"""Delayed messages on a level driven by hand: held until their not_before, never early."""

from __future__ import annotations

from typing import Any

import pytest

from tests.orchestrators.manual import ManualLevel, spec
from tierd.messaging.message import Address, Message
from tierd.orchestrators._delays import Delays

pytestmark = pytest.mark.timeout(10)

SENDER = Address("client", 0)


def _delayed(manual: ManualLevel, delay: float, payload: Any = "later", **options: Any) -> Message:
    return Message.notification(
        SENDER, Address("worker", 1), payload, not_before=manual.clock.time() + delay, **options
    )


def _now(manual: ManualLevel, payload: Any) -> Message:
    message = Message.notification(SENDER, Address("worker", 1), payload)
    return message.replace(created_at=manual.clock.time())


def test_a_delayed_message_is_held_until_its_time_and_not_a_moment_before():
    manual = ManualLevel([spec()])
    manual.level.submit(_delayed(manual, 30.0), None)
    assert manual.level.statistics().delayed == 1
    manual.advance(29.9)
    assert manual.handle_next("worker") == []
    manual.advance(0.1)
    assert [m.payload for m in manual.handle_next("worker")] == ["later"]
    assert manual.level.statistics().delayed == 0


def test_messages_sent_meanwhile_are_not_held_up_behind_a_delayed_one():
    manual = ManualLevel([spec()])
    manual.level.submit(_delayed(manual, 10.0, "later"), None)
    manual.level.submit(_now(manual, "now"), None)
    assert [m.payload for m in manual.handle_next("worker")] == ["now"]
    manual.advance(10.0)
    assert [m.payload for m in manual.handle_next("worker")] == ["later"]


def test_delayed_messages_come_out_in_the_order_of_their_times():
    manual = ManualLevel([spec()])
    manual.level.set_paused("worker", paused=True)
    for delay in (3.0, 1.0, 2.0):
        manual.level.submit(_delayed(manual, delay, delay), None)
    manual.advance(3.0)
    manual.level.set_paused("worker", paused=False)
    assert [m.payload for m in manual.handle_next("worker")] == [1.0, 2.0, 3.0]


def test_the_queue_timeout_of_a_delayed_message_counts_from_its_not_before():
    """Delay 60 s, timeout 5 s: it is queued at 60 s and expires at 65 s, not at 5 s."""
    manual = ManualLevel([spec()])
    manual.level.set_paused("worker", paused=True)
    manual.level.submit(_delayed(manual, 60.0, timeout=5.0), None)
    manual.advance(60.0)
    assert manual.level.statistics().queued == 1
    manual.advance(4.9)
    assert manual.level.statistics().dead_letters == {}
    manual.advance(0.2)
    assert manual.level.statistics().dead_letters == {"expired": 1}


def test_a_delayed_message_can_be_cancelled_before_its_time():
    manual = ManualLevel([spec()])
    message = _delayed(manual, 30.0)
    manual.level.submit(message, None)
    assert manual.level.cancel(message.id)
    assert manual.level.statistics().delayed == 0
    manual.advance(31.0)
    assert manual.handle_next("worker") == []
    assert not manual.level.cancel(message.id)


def test_a_delayed_message_is_not_limited_by_the_queue_when_its_time_comes():
    """It was accepted already: a full queue at release time does not refuse it."""
    manual = ManualLevel([spec()], queue_limit=1)
    manual.level.set_paused("worker", paused=True)
    manual.level.submit(_delayed(manual, 5.0, "later"), None)
    manual.level.submit(_now(manual, "now"), None)
    manual.advance(5.0)
    assert manual.level.statistics().queued == 2
    manual.level.set_paused("worker", paused=False)
    assert [m.payload for m in manual.handle_next("worker")] == ["now", "later"]


def test_delays_hand_back_what_is_due_earliest_first_and_forget_what_is_cancelled():
    delays = Delays()
    first, second, cancelled = (Message.notification(SENDER, Address("w", 1), n) for n in range(3))
    delays.hold(second, None, 20.0)
    delays.hold(first, None, 10.0)
    delays.hold(cancelled, None, 15.0)
    assert delays.cancel(cancelled.id) is not None
    assert delays.due(9.9) == []
    assert [d.message for d in delays.due(20.0)] == [first, second]
    assert len(delays) == 0
