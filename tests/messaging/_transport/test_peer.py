"""The peer link's state without sockets: liveness, held messages, reply routes, waiting senders."""

from __future__ import annotations

import threading

import pytest

import tierd
from tests.messaging._transport.fakes import Clock, Replies, make_request
from tierd.config import PeerConfig
from tierd.errors import to_payload
from tierd.logging import get_logger
from tierd.messaging._transport import codec
from tierd.messaging._transport.handoff import Handoff
from tierd.messaging._transport.peer import PeerLink
from tierd.messaging._transport.rejections import Rejections
from tierd.messaging.message import Address, Message


@pytest.fixture
def peer():
    """A peer link with a fake clock and a transmit function the test switches on and off."""
    clock = Clock()
    config = PeerConfig(endpoint="tcp://127.0.0.1:1", levels=[2], buffer_limit=5,
                        heartbeat_interval=1.0, heartbeat_liveness=3)  # fmt: skip
    link = PeerLink(config, Handoff(), Rejections(get_logger()), get_logger(), clock=clock)
    link.handoff.claim()  # the test's thread plays the I/O thread
    wire: list[codec.Frame] = []
    connected = [True]

    def transmit(frame: bytes) -> bool:
        if connected[0]:
            wire.append(codec.decode(frame))
        return connected[0]

    link.transmit = transmit
    yield link, clock, wire, connected
    link.handoff.close()


def _sent_ids(wire: list[codec.Frame]) -> list[str]:
    return [f.message.id for f in wire if isinstance(f, codec.MessageFrame)]


def test_a_peer_is_down_until_heard_and_down_again_after_the_liveness_time(peer):
    """A peer comes up on its first frame and goes down after interval x liveness of silence."""
    link, clock, wire, _ = peer
    link.tick(clock.now)
    assert wire == [codec.PingFrame()]
    assert not link.up
    link.on_frames([codec.encode_pong()])
    assert link.up
    clock.now += 3.5
    link.tick(clock.now)
    assert not link.up


def test_messages_are_held_while_down_and_sent_in_order_when_up(peer):
    """Messages submitted while the peer is down go out in order the moment it answers."""
    link, _clock, wire, _ = peer
    requests = [make_request() for _ in range(3)]
    for request in requests:
        link.submit(request, Replies())
    assert _sent_ids(wire) == []
    link.on_frames([codec.encode_pong()])
    assert _sent_ids(wire) == [r.id for r in requests]
    for request in requests:
        link.on_frames([codec.encode_ack(request.id)])
    assert link.held_count == 0


def test_an_unacknowledged_message_is_sent_again(peer):
    """A message the peer did not acknowledge within the liveness time is sent again."""
    link, clock, wire, _ = peer
    link.on_frames([codec.encode_pong()])
    note = Message.notification(Address("a", 1), Address("recorder", 2), 1)
    link.submit(note, None)
    clock.now += 2.0
    link.on_frames([codec.encode_pong()])
    link.tick(clock.now)
    assert _sent_ids(wire) == [note.id]
    clock.now += 2.0
    link.on_frames([codec.encode_pong()])
    link.tick(clock.now)
    assert _sent_ids(wire) == [note.id, note.id]


def test_a_full_buffer_refuses_requests_by_reply_and_notifications_by_raising(peer):
    """Beyond buffer_limit a request gets a Rejected reply and a notification raises Rejected."""
    link, *_ = peer
    for _ in range(5):
        link.submit(make_request(), Replies())
    replies = Replies()
    link.submit(make_request(), replies)
    assert replies.replies[0].payload["error"] == "Rejected"
    note = Message.notification(Address("a", 1), Address("recorder", 2), 1)
    with pytest.raises(tierd.Rejected, match="buffer_limit"):
        link.submit(note, None)


def test_a_held_request_whose_timeout_passes_gets_request_timeout(peer):
    """A request still held when its timeout passes is answered with RequestTimeout."""
    link, clock, _wire, _ = peer
    replies = Replies()
    request = make_request(timeout=2.0)
    link.submit(request, replies)
    clock.now += 2.5
    link.tick(clock.now)
    assert replies.replies[0].payload["error"] == "RequestTimeout"
    assert link.held_count == 0


def test_a_reply_from_the_peer_reaches_its_route_once(peer):
    """The peer's reply is handed to the request's route; a repeat of it is dropped."""
    link, *_ = peer
    link.on_frames([codec.encode_pong()])
    replies = Replies()
    request = make_request()
    link.submit(request, replies)
    reply = codec.encode_message(request.reply_to("done"))
    link.on_frames([reply])
    link.on_frames([reply])
    assert [r.payload for r in replies.replies] == ["done"]
    assert link.held_count == 0


# -- waiting senders -------------------------------------------------------------


def _note(timeout: float = 30.0) -> Message:
    return Message.notification(Address("a", 1), Address("recorder", 2), 1, timeout=timeout)


def test_a_notification_without_wait_is_held_and_counts_as_accepted(peer):
    """For a level the peer does not keep durably, a notification is accepted once held."""
    link, _clock, wire, _ = peer
    link.on_frames([codec.encode_pong([])])
    assert link.submit(_note(), None) is None
    (frame,) = [f for f in wire if isinstance(f, codec.MessageFrame)]
    assert frame.wait is False


def test_a_waiting_notification_carries_wait_and_settles_with_the_peers_ack(peer):
    """With wait the frame asks the peer to wait for room; the outcome settles with its ack."""
    link, _clock, wire, _ = peer
    link.on_frames([codec.encode_pong()])
    note = _note()
    accepted = link.submit(note, None, wait=True)
    (frame,) = [f for f in wire if isinstance(f, codec.MessageFrame)]
    assert frame.wait is True
    assert not accepted.done
    link.on_frames([codec.encode_ack(note.id)])
    assert accepted.done
    assert accepted.wait(0) is None
    assert link.held_count == 0


def test_a_waiting_notification_settles_with_the_peers_refusal(peer):
    """An error frame from the peer settles the waiting sender's outcome with that error."""
    link, *_ = peer
    link.on_frames([codec.encode_pong()])
    note = _note()
    accepted = link.submit(note, None, wait=True)
    refusal = tierd.Rejected("queue full: no room within the message's 30s timeout")
    link.on_frames([codec.encode_error(note.id, to_payload(refusal))])
    error = accepted.wait(0)
    assert isinstance(error, tierd.Rejected)
    assert "queue full" in str(error)
    assert link.held_count == 0


def test_a_waiting_notification_the_peer_does_not_answer_is_rejected_after_a_grace(peer):
    """Unanswered by its deadline plus a short grace, a waiting sender's outcome is Rejected."""
    link, clock, _wire, _ = peer
    link.on_frames([codec.encode_pong()])
    accepted = link.submit(_note(timeout=2.0), None, wait=True)
    clock.now += 2.1
    link.on_frames([codec.encode_pong()])
    link.tick(clock.now)
    assert not accepted.done  # the peer's own refusal may still be on its way
    clock.now += 0.5
    link.on_frames([codec.encode_pong()])
    link.tick(clock.now)
    error = accepted.wait(0)
    assert isinstance(error, tierd.Rejected)
    assert "did not confirm" in str(error)
    assert link.held_count == 0


def test_a_waiting_notification_for_a_down_peer_is_rejected_at_its_deadline(peer):
    """A waiting notification never sent (the peer stays down) is Rejected at its deadline."""
    link, clock, wire, _ = peer
    accepted = link.submit(_note(timeout=2.0), None, wait=True)
    clock.now += 2.1
    link.tick(clock.now)
    error = accepted.wait(0)
    assert isinstance(error, tierd.Rejected)
    assert "is down" in str(error)
    assert _sent_ids(wire) == []


def test_a_waiting_notification_resent_is_still_settled_once_by_the_ack(peer):
    """A waiting notification unacknowledged for the liveness time is resent; one ack settles it."""
    link, clock, wire, _ = peer
    link.on_frames([codec.encode_pong()])
    note = _note()
    accepted = link.submit(note, None, wait=True)
    clock.now += 3.5
    link.on_frames([codec.encode_pong()])
    link.tick(clock.now)
    assert _sent_ids(wire) == [note.id, note.id]
    link.on_frames([codec.encode_ack(note.id)])
    assert accepted.wait(0) is None


def test_a_waiting_notification_meeting_a_full_buffer_is_refused_at_once(peer):
    """With wait, a full buffer for the peer still refuses a notification by raising."""
    link, *_ = peer
    for _ in range(5):
        link.submit(_note(), None)
    with pytest.raises(tierd.Rejected, match="buffer_limit"):
        link.submit(_note(), None, wait=True)


def test_a_request_with_wait_is_sent_as_a_plain_request(peer):
    """The peer waits for room for notifications only: a request goes out without the flag."""
    link, _clock, wire, _ = peer
    link.on_frames([codec.encode_pong()])
    assert link.submit(make_request(), Replies(), wait=True) is None
    (frame,) = [f for f in wire if isinstance(f, codec.MessageFrame)]
    assert frame.wait is False


def test_waiting_senders_are_refused_when_the_bridge_stops(peer):
    """fail_waiting settles every waiting sender's outcome with the given error."""
    link, *_ = peer
    link.on_frames([codec.encode_pong([])])
    accepted = link.submit(_note(), None, wait=True)
    plain = link.submit(_note(), None)
    link.fail_waiting(tierd.Rejected("runtime is stopping"))
    assert str(accepted.wait(0)) == "runtime is stopping"
    assert plain is None


def test_a_waiting_notification_handed_to_a_stopped_bridge_is_refused(peer):
    """Submitted from another thread after the bridge stopped, a waiting sender is refused."""
    link, *_ = peer
    link.handoff.close()
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(link.submit(_note(), None, wait=True)))
    thread.start()
    thread.join(5)
    (accepted,) = outcome
    assert str(accepted.wait(0)) == "runtime is stopping"


def test_a_notification_for_a_level_durable_at_the_peer_is_confirmed_by_its_ack(peer):
    """End-to-end acceptance: the outcome settles with the ack the peer sends after its commit."""
    link, _clock, wire, _ = peer
    link.on_frames([codec.encode_pong([2])])
    note = _note()
    accepted = link.submit(note, None)
    (frame,) = [f for f in wire if isinstance(f, codec.MessageFrame)]
    assert frame.wait is False  # no waiting for room was asked for
    assert not accepted.done
    link.on_frames([codec.encode_ack(note.id)])
    assert accepted.wait(0) is None


def test_until_the_peer_says_which_levels_are_durable_every_notification_is_confirmed(peer):
    """A peer not heard yet (or an older one, whose pong says nothing) may keep any level."""
    link, _clock, _wire, _ = peer
    assert link.submit(_note(), None) is not None
    link.on_frames([codec.encode_pong()])  # an older tierd: no durable levels in its pong
    assert link.submit(_note(), None) is not None
    link.on_frames([codec.encode_pong([3])])
    assert link.submit(_note(), None) is None
