"""Frame handling without sockets or a poller: the inbound handler and the peer link's state."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
import structlog

import tierd
from tierd.config import PeerConfig
from tierd.logging import get_logger
from tierd.messaging._transport import codec
from tierd.messaging._transport.dedup import RecentIds
from tierd.messaging._transport.handoff import Handoff
from tierd.messaging._transport.inbound import InboundHandler
from tierd.messaging._transport.peer import PeerLink
from tierd.messaging._transport.rejections import Rejections
from tierd.messaging.link import Router
from tierd.messaging.message import Address, Message


class Clock:
    """Monotonic time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RecordingLink:
    """An in-memory link: remembers what was submitted, refuses when told to."""

    def __init__(self) -> None:
        self.submitted: list[tuple[Message, Any]] = []
        self.refuse: tierd.TierdError | None = None

    def submit(self, message: Message, reply_route: Any, *, wait: bool = False) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.submitted.append((message, reply_route))


class Replies:
    """A reply route that keeps what it is given."""

    def __init__(self) -> None:
        self.replies: list[Message] = []

    def deliver_reply(self, reply: Message) -> None:
        self.replies.append(reply)


def _frames(sent: list[tuple[bytes, bytes]]) -> list[codec.Frame]:
    return [codec.decode(frame) for _, frame in sent]


@pytest.fixture
def inbound():
    """An inbound handler routing level 2 to a recording link, and what it sent back."""
    router = Router()
    link = RecordingLink()
    router.add_remote(2, link)
    sent: list[tuple[bytes, bytes]] = []
    clock = Clock()

    def send(identity: bytes, frame: bytes) -> None:
        sent.append((identity, frame))

    handler = InboundHandler(
        router, Rejections(get_logger(), clock=clock), RecentIds(60.0),
        send_now=send, send_any_thread=send, ask_status=lambda *_: None, clock=clock,
    )  # fmt: skip
    return handler, link, sent


def _request(recipient: str = "echo@2", timeout: float = 30.0) -> Message:
    return Message.request(Address("client", 0), Address.parse(recipient), "hi", timeout=timeout)


def test_an_accepted_request_is_submitted_acked_and_its_reply_goes_back(inbound):
    """A request is submitted once with a route back to its sender's identity, and acknowledged."""
    handler, link, sent = inbound
    request = _request()
    handler.handle([b"id-1", codec.encode_message(request)])
    assert [m.id for m, _ in link.submitted] == [request.id]
    assert _frames(sent) == [codec.AckFrame(request.id)]
    link.submitted[0][1].deliver_reply(request.reply_to("hello"))
    identity, frame = sent[-1]
    reply = codec.decode(frame)
    assert identity == b"id-1"
    assert isinstance(reply, codec.MessageFrame)
    assert reply.message.parent_id == request.id


def test_a_resent_message_is_acked_but_not_handed_on_twice(inbound):
    """The same message id arriving twice is acknowledged twice and submitted once."""
    handler, link, sent = inbound
    data = codec.encode_message(_request())
    handler.handle([b"peer", data])
    handler.handle([b"peer", data])
    assert len(link.submitted) == 1
    assert [type(f) for f in _frames(sent)] == [codec.AckFrame, codec.AckFrame]
    assert handler.duplicates == 1


def test_a_refused_request_gets_an_error_reply_and_a_notification_an_error_frame(inbound):
    """UnknownRecipient comes back as an error reply to a request, and an error frame otherwise."""
    handler, _link, sent = inbound
    request = _request("echo@9")
    handler.handle([b"c", codec.encode_message(request)])
    note = Message.notification(Address("client", 0), Address("echo", 9), None)
    handler.handle([b"c", codec.encode_message(note)])
    reply, error = _frames(sent)
    assert isinstance(reply, codec.MessageFrame)
    assert reply.message.status == "error"
    assert reply.message.payload["error"] == "UnknownRecipient"
    assert isinstance(error, codec.ErrorFrame)
    assert error.message_id == note.id


def test_a_stopping_runtime_refuses_new_messages_but_answers_heartbeats(inbound):
    """After accepting stops, messages are refused as stopping and pings are still answered."""
    handler, link, sent = inbound
    handler.accepting = False
    handler.handle([b"c", codec.encode_message(_request())])
    handler.handle([b"c", codec.encode_ping()])
    reply, pong = _frames(sent)
    assert isinstance(reply, codec.MessageFrame)
    assert reply.message.payload["reason"] == "runtime is stopping"
    assert pong == codec.PongFrame()
    assert link.submitted == []


def test_refused_frames_are_logged_once_per_reason_per_interval(inbound):
    """A flood of bad frames is counted in full but logged once per reason per interval."""
    handler, _link, sent = inbound
    with structlog.testing.capture_logs() as logs:
        for _ in range(50):
            handler.handle([b"c", b"\xc1"])
        handler.handle([b"c", msgpack.packb({"v": 7})])
    assert handler.rejections.snapshot() == {"malformed": 50, "bad_version": 1}
    assert [(log["event"], log["reason"]) for log in logs] == [
        ("frame_rejected", "malformed"),
        ("frame_rejected", "bad_version"),
    ]
    assert len(sent) == 51  # every sender that can be answered is answered


# -- the peer link ---------------------------------------------------------------


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
    requests = [_request() for _ in range(3)]
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
        link.submit(_request(), Replies())
    replies = Replies()
    link.submit(_request(), replies)
    assert replies.replies[0].payload["error"] == "Rejected"
    note = Message.notification(Address("a", 1), Address("recorder", 2), 1)
    with pytest.raises(tierd.Rejected, match="buffer_limit"):
        link.submit(note, None)


def test_a_held_request_whose_timeout_passes_gets_request_timeout(peer):
    """A request still held when its timeout passes is answered with RequestTimeout."""
    link, clock, _wire, _ = peer
    replies = Replies()
    request = _request(timeout=2.0)
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
    request = _request()
    link.submit(request, replies)
    reply = codec.encode_message(request.reply_to("done"))
    link.on_frames([reply])
    link.on_frames([reply])
    assert [r.payload for r in replies.replies] == ["done"]
    assert link.held_count == 0
