"""The inbound handler's decisions about frames from clients and peers, without sockets."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
import structlog

import tierd
from tests.messaging._transport.fakes import Clock, make_request
from tierd._outcome import Outcome
from tierd.logging import get_logger
from tierd.messaging._transport import codec
from tierd.messaging._transport.access import Access
from tierd.messaging._transport.dedup import RecentIds
from tierd.messaging._transport.inbound import InboundHandler
from tierd.messaging._transport.rejections import Rejections
from tierd.messaging.link import Router
from tierd.messaging.message import Address, Message


class RecordingLink:
    """An in-memory link: remembers what was submitted, refuses when told to.

    A message submitted with ``wait`` gets an outcome the test settles, as a
    full level's waiting room would.
    """

    def __init__(self) -> None:
        self.submitted: list[tuple[Message, Any]] = []
        self.refuse: tierd.TierdError | None = None
        self.waits: list[Outcome[tierd.TierdError | None]] = []

    def submit(
        self, message: Message, reply_route: Any, *, wait: bool = False
    ) -> Outcome[tierd.TierdError | None] | None:
        if self.refuse is not None:
            raise self.refuse
        self.submitted.append((message, reply_route))
        if not wait:
            return None
        admission: Outcome[tierd.TierdError | None] = Outcome()
        self.waits.append(admission)
        return admission


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


def test_an_accepted_request_is_submitted_acked_and_its_reply_goes_back(inbound):
    """A request is submitted once with a route back to its sender's identity, and acknowledged."""
    handler, link, sent = inbound
    request = make_request()
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
    data = codec.encode_message(make_request())
    handler.handle([b"peer", data])
    handler.handle([b"peer", data])
    assert len(link.submitted) == 1
    assert [type(f) for f in _frames(sent)] == [codec.AckFrame, codec.AckFrame]
    assert handler.duplicates == 1


def test_a_waiting_message_is_acked_once_in_and_its_resends_meanwhile_are_not(inbound):
    """A resend of a message still waiting for room gets no ack; the one ack comes when it is in."""
    handler, link, sent = inbound
    note = Message.notification(Address("peer", 1), Address("recorder", 2), 1)
    data = codec.encode_message(note, wait=True)
    handler.handle([b"peer", data])
    handler.handle([b"peer", data])
    assert len(link.submitted) == 1
    assert sent == []
    link.waits[0].set(None)
    handler.handle([b"peer", data])
    assert _frames(sent) == [codec.AckFrame(note.id), codec.AckFrame(note.id)]
    assert handler.duplicates == 2
    assert handler.waiting == set()


def test_a_waiting_message_that_finds_no_room_is_refused_and_not_acked(inbound):
    """A message whose wait for room ends in a refusal gets an error frame, and no ack before it."""
    handler, link, sent = inbound
    note = Message.notification(Address("peer", 1), Address("recorder", 2), 1)
    data = codec.encode_message(note, wait=True)
    handler.handle([b"peer", data])
    handler.handle([b"peer", data])
    link.waits[0].set(tierd.Rejected("queue full: no room within the message's 30s timeout"))
    (refusal,) = _frames(sent)
    assert isinstance(refusal, codec.ErrorFrame)
    assert refusal.message_id == note.id
    assert refusal.error["reason"].startswith("queue full")


def test_a_refused_request_gets_an_error_reply_and_a_notification_an_error_frame(inbound):
    """UnknownRecipient comes back as an error reply to a request, and an error frame otherwise."""
    handler, _link, sent = inbound
    request = make_request("echo@9")
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
    handler.handle([b"c", codec.encode_message(make_request())])
    handler.handle([b"c", codec.encode_ping()])
    reply, pong = _frames(sent)
    assert isinstance(reply, codec.MessageFrame)
    assert reply.message.payload["reason"] == "runtime is stopping"
    assert pong == codec.PongFrame(durable=frozenset())
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


def test_the_same_id_from_two_senders_is_two_messages(inbound):
    """Duplicates are per sender: another connection reusing an id does not hide the message."""
    handler, link, _sent = inbound
    note = Message.notification(Address("client", 0), Address("recorder", 2), 1)
    data = codec.encode_message(note)
    handler.handle([b"attacker", data])
    handler.handle([b"victim", data])
    handler.handle([b"victim", data])  # the victim's own resend is still one
    assert len(link.submitted) == 2
    assert handler.duplicates == 1


def test_under_curve_the_sender_is_the_key_not_the_routing_id(inbound):
    """Under CURVE a resend on a new connection of one key is a duplicate; another key's is not."""
    handler, link, _sent = inbound
    data = codec.encode_message(Message.notification(Address("c", 0), Address("recorder", 2), 1))
    handler.handle([b"conn-1", data], "key-A")
    handler.handle([b"conn-2", data], "key-A")
    handler.handle([b"conn-2", data], "key-B")
    assert len(link.submitted) == 2
    assert handler.duplicates == 1


def test_ids_a_durable_level_handled_before_a_restart_are_dropped_from_any_sender(inbound):
    """Recovered ids carry no sender: a resend of one is acked and not handed on."""
    handler, link, sent = inbound
    note = Message.notification(Address("peer", 1), Address("recorder", 2), 1)
    handler.remember(note.id, 0.0)
    handler.handle([b"peer-again", codec.encode_message(note)])
    assert link.submitted == []
    assert _frames(sent) == [codec.AckFrame(note.id)]


def test_a_control_operation_needs_the_operate_role(inbound):
    """A send key's control frame is refused, counted and never run; an operate key's runs."""
    handler, _link, sent = inbound
    asked: list[str] = []
    handler.ask_control = lambda _identity, query: asked.append(query.operation)
    handler.access = Access({"ops-key": "operate", "app-key": "send"})
    frame = codec.encode_control("q1", "purge_dead_letters", {})
    handler.handle([b"app", frame], "app-key")
    handler.handle([b"ops", frame], "ops-key")
    assert asked == ["purge_dead_letters"]
    (refusal,) = _frames(sent)
    assert isinstance(refusal, codec.ErrorFrame)
    assert "'operate' role" in refusal.error["text"]
    assert handler.access.forbidden == 1
    assert handler.rejections.snapshot() == {"forbidden": 1}


def test_batched_messages_are_confirmed_by_one_acks_frame_per_flush(inbound):
    """Messages marked ``batch`` get no ack each; `flush` sends one acks frame for them all."""
    handler, _link, sent = inbound
    notes = [_note(n) for n in range(5)]
    for note in notes:
        handler.handle([b"client", codec.encode_message(note, batch=True)])
    assert sent == []
    handler.flush()
    assert _frames(sent) == [codec.AcksFrame(tuple(note.id for note in notes))]
    assert handler.confirm_frames == 1
    handler.flush()
    assert len(sent) == 1  # nothing owed any more


def test_a_refused_batched_message_gets_its_own_error_at_once(inbound):
    """A refusal is not batched: the error frame names the refused id, the others are confirmed."""
    handler, _link, sent = inbound
    good = Message.notification(Address("client", 0), Address("recorder", 2), 1)
    bad = Message.notification(Address("client", 0), Address("recorder", 7), 2)
    handler.handle([b"client", codec.encode_message(good, batch=True)])
    handler.handle([b"client", codec.encode_message(bad, batch=True)])
    handler.flush()
    frames = _frames(sent)
    assert isinstance(frames[0], codec.ErrorFrame)
    assert frames[0].message_id == bad.id
    assert frames[1] == codec.AcksFrame((good.id,))


def test_batched_acks_are_split_at_the_frame_limit_and_per_sender(inbound):
    """More than MAX_ACKS_PER_FRAME confirms go in several frames, each to its own sender."""
    handler, _link, sent = inbound
    count = codec.MAX_ACKS_PER_FRAME + 3
    for n in range(count):
        note = Message.notification(Address("client", 0), Address("recorder", 2), n)
        handler.handle([b"a" if n % 2 else b"b", codec.encode_message(note, batch=True)])
    handler.flush()
    sizes = {identity: [] for identity, _ in sent}
    for identity, frame in sent:
        decoded = codec.decode(frame)
        assert isinstance(decoded, codec.AcksFrame)
        sizes[identity].append(len(decoded.message_ids))
    assert sum(map(sum, sizes.values())) == count
    assert max(max(s) for s in sizes.values()) <= codec.MAX_ACKS_PER_FRAME


def test_acks_settled_in_another_thread_are_gathered_and_flushed_once():
    """Acks that settle later (a group commit) are owed together; one I/O-thread call sends them."""
    router = Router()
    link = RecordingLink()
    router.add_remote(2, link)
    sent: list[tuple[bytes, bytes]] = []
    soon: list[Any] = []
    handler = InboundHandler(
        router, Rejections(get_logger()), RecentIds(60.0),
        send_now=lambda i, f: sent.append((i, f)), send_any_thread=lambda i, f: sent.append((i, f)),
        ask_status=lambda *_: None, call_soon=soon.append,
    )  # fmt: skip
    notes = [_note(n) for n in range(3)]
    pending: list[Outcome[tierd.TierdError | None]] = []

    def durable_submit(message: Message, route: Any, *, wait: bool = False) -> Any:
        outcome: Outcome[tierd.TierdError | None] = Outcome()
        pending.append(outcome)
        return outcome

    link.submit = durable_submit  # type: ignore[method-assign]
    for note in notes:
        handler.handle([b"client", codec.encode_message(note, batch=True)])
    handler.flush()
    assert sent == []
    for outcome in pending:  # the journal's commit settles them one after another
        outcome.set(None)
    assert len(soon) == 1
    soon[0]()
    assert _frames(sent) == [codec.AcksFrame(tuple(note.id for note in notes))]


def _note(payload: int) -> Message:
    return Message.notification(Address("client", 0), Address("recorder", 2), payload)
