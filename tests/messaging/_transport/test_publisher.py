"""`EventPublisher`: never blocks, counts what it drops, follows only while someone subscribes."""

from __future__ import annotations

import re
from typing import Any

import pytest
import zmq

from tests.network import endpoint
from tierd.errors import BindError
from tierd.messaging._transport.event_wire import decode_event
from tierd.messaging._transport.publisher import EventPublisher
from tierd.messaging.events import EventFanOut
from tierd.testing import wait_until

pytestmark = pytest.mark.timeout(15)


@pytest.fixture
def context():
    made = zmq.Context()
    yield made
    made.destroy(linger=0)


def _event(n: int) -> dict[str, Any]:
    return {"type": "step_progress", "topic": "process.k.p", "seq": n}


def test_a_full_queue_drops_and_counts_and_never_blocks(context):
    """With the thread not draining (not started), events past the queue's size are dropped."""
    publisher = EventPublisher(endpoint(), name="t", context=context, queue_size=3)
    for n in range(10):
        publisher.publish("process.k.p", _event(n))
    assert publisher.dropped == 7
    publisher.stop()


def test_it_joins_the_fan_out_only_while_a_subscriber_is_connected(context):
    """No subscriber: not in the fan-out (nothing is built); one SUB: in; it leaves: out."""
    fan_out = EventFanOut()
    publisher = EventPublisher(endpoint(), name="t", context=context, followers=fan_out)
    publisher.start()
    try:
        assert not fan_out.active
        sub = context.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"process.")
        sub.connect(publisher.address)
        wait_until(lambda: fan_out.active)
        assert publisher.subscriptions == frozenset({b"process."})
        fan_out.publish("process.k.p", _event(1))
        assert sub.poll(5000)
        assert decode_event(sub.recv_multipart()) == _event(1)
        sub.close(linger=0)
        wait_until(lambda: not fan_out.active)
    finally:
        publisher.stop()


def test_an_event_that_cannot_be_encoded_is_dropped_and_counted(context):
    """A value msgpack cannot write is dropped (counted, logged); the next event still goes."""
    publisher = EventPublisher(endpoint(), name="t", context=context)
    publisher.start()
    try:
        sub = context.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(publisher.address)
        wait_until(lambda: publisher.subscriptions)
        publisher.publish("process.k.p", {"type": "x", "topic": "process.k.p", "bad": object()})
        publisher.publish("process.k.p", _event(2))
        assert sub.poll(5000)
        assert decode_event(sub.recv_multipart()) == _event(2)
        assert publisher.dropped == 1
        wait_until(lambda: publisher.published == 1)
        sub.close(linger=0)
    finally:
        publisher.stop()


def test_an_address_in_use_is_a_bind_error(context):
    """A second publisher on a bound endpoint fails to start with BindError naming it."""
    address = endpoint()
    first = EventPublisher(address, name="a", context=context)
    first.start()
    try:
        second = EventPublisher(address, name="b", context=context)
        with pytest.raises(BindError, match=re.escape(address)):
            second.start()
    finally:
        first.stop()


def test_an_event_nobody_subscribed_to_is_not_sent(context):
    """Subscribed to process.: a daemon event is skipped before encoding; a process one goes."""
    publisher = EventPublisher(endpoint(), name="t", context=context)
    publisher.start()
    try:
        sub = context.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"process.")
        sub.connect(publisher.address)
        wait_until(lambda: publisher.subscriptions)
        publisher.publish("daemon.1.echo", {"type": "daemon_state", "topic": "daemon.1.echo"})
        publisher.publish("process.k.p", _event(3))
        assert sub.poll(5000)
        assert decode_event(sub.recv_multipart()) == _event(3)
        sub.close(linger=0)
    finally:
        publisher.stop()  # joins the thread: the counts are final
    assert (publisher.published, publisher.dropped) == (1, 0)
