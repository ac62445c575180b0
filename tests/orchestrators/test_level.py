"""The level on a fake clock, driven by hand: hand-over, timeouts, restarts, retries, room."""

from __future__ import annotations

import pytest

import tierd
from tests.orchestrators.manual import ManualLevel, spec
from tierd._outcome import Outcome
from tierd.actors.states import DaemonState
from tierd.messaging.message import Address, Message
from tierd.orchestrators._journal import Recovered
from tierd.orchestrators._retries import RetryPolicy
from tierd.orchestrators._supervision import RestartPolicy, SupervisionPolicy

RESTART_ON_RUNTIME_ERROR = SupervisionPolicy(restart=("RuntimeError",))
CLIENT = Address("client", 0)
WORKER = Address("worker", 1)


def note(manual: ManualLevel, payload: object = None, *, timeout: float = 30.0) -> Message:
    """A notification for worker@1, made now on the level's clock."""
    message = Message.notification(CLIENT, WORKER, payload, timeout=timeout)
    return message.replace(created_at=manual.clock.time())


def ask(manual: ManualLevel, *, timeout: float = 30.0) -> tuple[Message, Outcome]:
    """A request for worker@1, made now on the level's clock, and its waiter."""
    request = Message.request(CLIENT, WORKER, None, timeout=timeout)
    return request.replace(created_at=manual.clock.time()), Outcome()


def state(manual: ManualLevel, daemon: str = "worker") -> DaemonState:
    return manual.level.slots[daemon].state


def test_an_idle_daemon_gets_a_message_at_once_and_a_working_one_gets_nothing_more():
    """Prefetch 1: the second message waits in the queue until the first is finished."""
    manual = ManualLevel([spec()])
    manual.level.submit(note(manual, 1), None)
    manual.level.submit(note(manual, 2), None)
    inbox = manual.executor("worker").inbox
    assert [m.payload for m in inbox] == [1]
    assert state(manual) is DaemonState.WORKING
    assert manual.level.statistics().queued == 1
    handled = manual.handle_next("worker")
    assert [m.payload for m in handled] == [1, 2]  # the second is handed back in the same thread
    assert state(manual) is DaemonState.IDLE


def test_a_queued_notification_expires_exactly_at_its_timeout():
    """No sweep before the deadline expires it; the one at the deadline dead-letters it."""
    manual = ManualLevel([spec()])
    manual.level.set_paused("worker", paused=True)
    manual.level.submit(note(manual, "late", timeout=5.0), None)
    manual.advance(4.999)
    assert manual.level.statistics().queued == 1
    manual.advance(0.001)
    after = manual.level.statistics()
    assert after.queued == 0
    assert after.timeouts == 1
    assert after.dead_letters == {"expired": 1}
    assert [letter.reason for letter in manual.level.dead_letter_list()] == ["expired"]


def test_a_request_from_outside_times_out_on_the_clock_and_its_late_reply_is_counted():
    """The waiter gets RequestTimeout at the deadline; the reply after it is dropped and counted."""
    manual = ManualLevel([spec()])
    request, waiter = ask(manual, timeout=2.0)
    manual.level.submit(request, None, waiter=waiter)
    manual.advance(1.9)
    assert not waiter.done
    manual.advance(0.1)
    assert isinstance(waiter.wait(0), tierd.RequestTimeout)
    manual.handle_next("worker")  # the handler replies after all
    after = manual.level.statistics()
    assert after.completed == {"ok": 1, "error": 0, "timeout": 1}
    assert after.late_replies == 1


def test_a_crashed_daemon_restarts_after_its_backoff_and_not_before():
    """Crash -> ERROR; the restart happens at initial_delay on the clock, then it takes work."""
    policy = RestartPolicy(initial_delay=0.5, multiplier=2.0, max_delay=5.0)
    manual = ManualLevel([spec(restart=policy, supervision=RESTART_ON_RUNTIME_ERROR)])
    manual.level.submit(note(manual, "boom"), None)
    manual.handle_next("worker", _raise)
    assert state(manual) is DaemonState.ERROR
    assert manual.executor("worker").stopped
    manual.level.submit(note(manual, "after"), None)
    manual.advance(0.499)
    assert state(manual) is DaemonState.ERROR
    manual.advance(0.001)
    assert state(manual) is DaemonState.WORKING  # restarted, and handed the waiting message
    assert [m.payload for m in manual.handle_next("worker")] == ["after"]
    assert manual.level.statistics().daemons[0].restarts == 1


def test_restart_delays_grow_and_the_daemon_is_given_up_after_the_limit():
    """Three restarts at 0.1, 0.2, 0.4 s; the fourth crash in the window gives it up for good."""
    policy = RestartPolicy(initial_delay=0.1, multiplier=2.0, max_restarts=3, window=60.0)
    manual = ManualLevel([spec(restart=policy, supervision=RESTART_ON_RUNTIME_ERROR)])
    for delay in (0.1, 0.2, 0.4):
        manual.level.submit(note(manual), None)
        manual.handle_next("worker", _raise)
        manual.advance(delay - 0.01)
        assert state(manual) is DaemonState.ERROR
        manual.advance(0.01)
        assert state(manual) is DaemonState.IDLE
    manual.level.submit(note(manual), None)
    manual.handle_next("worker", _raise)
    assert manual.level.slots["worker"].given_up
    request, waiter = ask(manual)
    manual.level.submit(request, None, waiter=waiter)
    refused = waiter.wait(0)
    assert isinstance(refused, tierd.Message)
    with pytest.raises(tierd.RemoteError, match="DaemonGivenUp"):
        tierd.messaging.link.unwrap_reply(refused)


def test_a_retryable_error_is_delivered_again_after_each_backoff_then_dead_lettered():
    """Retries at 1 s then 2 s (same id); after max_attempts the message is dead-lettered."""
    retry = RetryPolicy(max_attempts=3, initial_delay=1.0, multiplier=2.0, on=("ConnectionError",))
    restart = RestartPolicy(initial_delay=0.0)
    manual = ManualLevel([spec(retry=retry, restart=restart, poison_after=10)])
    message = note(manual, "flaky")
    manual.level.submit(message, None)
    delivered = manual.handle_next("worker", _refuse_connection)
    manual.advance(0)  # the restart
    for backoff in (1.0, 2.0):
        manual.advance(backoff - 0.01)
        assert not manual.executor("worker").inbox
        manual.advance(0.01)
        delivered += manual.handle_next("worker", _refuse_connection)
        manual.advance(0)
    assert [m.id for m in delivered] == [message.id] * 3
    after = manual.level.statistics()
    assert after.retries == 2
    assert after.dead_letters == {"retries_exhausted": 1}


def test_a_sender_waiting_for_room_is_admitted_when_a_message_leaves_the_queue():
    """queue_limit 1: the parked message gets in the moment the queued one is handed over."""
    manual = ManualLevel([spec()], queue_limit=1)
    manual.level.submit(note(manual, "handled"), None)  # handed over: not queued
    manual.level.submit(note(manual, "queued"), None)
    with pytest.raises(tierd.Rejected, match="queue full"):
        manual.level.submit(note(manual, "refused"), None)
    admission = manual.level.submit(note(manual, "parked"), None, wait=True)
    assert admission is not None
    assert not admission.done
    manual.handle_next("worker", one=True)
    assert admission.done
    assert admission.wait(0) is None
    assert [m.payload for m in manual.handle_next("worker")] == ["queued", "parked"]


def test_a_sender_waiting_for_room_is_refused_when_its_timeout_passes():
    """No room within the message's timeout: the wait ends with Rejected, counted once."""
    manual = ManualLevel([spec()], queue_limit=1)
    manual.level.submit(note(manual), None)
    manual.level.submit(note(manual), None)
    admission = manual.level.submit(note(manual, timeout=3.0), None, wait=True)
    assert admission is not None
    manual.advance(2.9)
    assert not admission.done
    manual.advance(0.1)
    assert isinstance(admission.wait(0), tierd.Rejected)
    assert manual.level.statistics().rejected == {"queue_full": 1}


def test_cancel_of_a_queued_request_tells_its_waiter_and_frees_the_queue():
    """The requester gets Cancelled; the level no longer holds the message."""
    manual = ManualLevel([spec()])
    manual.level.set_paused("worker", paused=True)
    request, waiter = ask(manual)
    manual.level.submit(request, None, waiter=waiter)
    assert manual.level.cancel(request.id)
    reply = waiter.wait(0)
    with pytest.raises(tierd.Cancelled):
        tierd.messaging.link.unwrap_reply(reply)
    assert manual.level.statistics().queued == 0
    assert not manual.level.cancel(request.id)


def _raise(message: Message) -> None:
    raise RuntimeError(f"cannot handle {message.payload!r}")


def _refuse_connection(message: Message) -> None:
    raise ConnectionError("the far side is down")


def test_a_resumed_daemon_keeps_its_executor_and_takes_its_next_message_at_once():
    """The default directive: no restart, the same executor, the next message in this thread."""
    manual = ManualLevel([spec()])
    manual.level.submit(note(manual, "boom"), None)
    manual.level.submit(note(manual, "next"), None)
    executor = manual.executor("worker")
    handled = manual.handle_next("worker", _raise)
    assert [m.payload for m in handled] == ["boom"]
    assert [m.payload for m in executor.inbox] == ["next"]  # handed back in the same thread
    assert state(manual) is DaemonState.WORKING
    assert manual.executor("worker") is executor
    assert not executor.stopped
    after = manual.level.statistics()
    assert (after.daemons[0].errors, after.daemons[0].restarts) == (1, 0)
    assert after.dead_letters == {"handler_error": 1}


def test_an_exception_listed_in_stop_gives_the_daemon_up_at_once():
    """supervision.stop: given up on the first raise; its queue is refused, no restart is due."""
    manual = ManualLevel([spec(supervision=SupervisionPolicy(stop=("RuntimeError",)))])
    manual.level.submit(note(manual, "boom"), None)
    manual.level.submit(note(manual, "queued"), None)
    manual.handle_next("worker", _raise, one=True)
    assert manual.level.slots["worker"].given_up
    manual.advance(3600)
    assert state(manual) is DaemonState.ERROR
    assert manual.level.statistics().dead_letters == {"handler_error": 1, "daemon_gave_up": 1}


class HandCommittedStore:
    """A durable store whose commits the test settles by hand, one outcome per put."""

    durable = True

    def __init__(self) -> None:
        self.commits: list[Outcome] = []

    def record(self, message: Message, identity: bytes | None) -> str:
        return message.id

    def put(self, row: str, attempts: int) -> Outcome:
        self.commits.append(Outcome())
        return self.commits[-1]

    def attempt(self, message_id: str, attempts: int) -> None: ...

    def done(self, message_id: str) -> None: ...

    def dead_letter(self, message: Message, reason: str, detail: str, at: float) -> None: ...

    def forget_dead_letters(self, message_ids: list[str] | None = None) -> None: ...


def test_a_durable_message_reaches_its_daemon_only_after_its_commit():
    """An idle daemon of a durable level is handed a message once its journal row is committed."""
    store = HandCommittedStore()
    manual = ManualLevel([spec()], store=store)
    accepted = manual.level.submit(note(manual, 1), None)
    assert accepted is store.commits[0]
    assert not manual.executor("worker").inbox
    store.commits[0].set(None)
    assert [m.payload for m in manual.executor("worker").inbox] == [1]


def test_a_message_whose_commit_failed_is_withdrawn_before_its_sender_is_told():
    """Refused means not kept: a failed journal write leaves nothing to hand over or queue."""
    store = HandCommittedStore()
    manual = ManualLevel([spec()], store=store)
    seen_when_told: list[int] = []
    accepted = manual.level.submit(note(manual, 1), None)
    accepted.add_done_callback(lambda _error: seen_when_told.append(len(manual.level.queue)))
    manual.level.submit(note(manual, 2), None)
    store.commits[0].set(tierd.Rejected("disk full"))
    store.commits[1].set(None)
    assert seen_when_told == [0]
    assert [m.payload for m in manual.handle_next("worker")] == [2]
    assert manual.level.statistics().rejected == {"journal_failed": 1}


def test_commits_that_settle_out_of_order_still_queue_in_acceptance_order():
    """A later commit that settles first waits for the earlier one: order is the puts' order."""
    store = HandCommittedStore()
    manual = ManualLevel([spec()], store=store)
    manual.level.set_paused("worker", paused=True)
    for n in range(3):
        manual.level.submit(note(manual, n), None)
    store.commits[2].set(None)
    store.commits[1].set(None)
    assert len(manual.level.queue) == 0
    store.commits[0].set(None)
    manual.level.set_paused("worker", paused=False)
    assert [m.payload for m in manual.handle_next("worker")] == [0, 1, 2]


def test_messages_waiting_for_their_commit_take_room_in_the_queue():
    """The queue limit counts messages not yet committed, so a commit never overfills it."""
    store = HandCommittedStore()
    manual = ManualLevel([spec()], store=store, queue_limit=2)
    manual.level.set_paused("worker", paused=True)
    manual.level.submit(note(manual, 1), None)
    manual.level.submit(note(manual, 2), None)
    with pytest.raises(tierd.Rejected, match="queue full"):
        manual.level.submit(note(manual, 3), None)


def test_a_request_made_here_whose_commit_failed_gets_the_refusal():
    """A request from outside every daemon learns of the failed write from its waiter."""
    store = HandCommittedStore()
    manual = ManualLevel([spec()], store=store)
    request, waiter = ask(manual)
    manual.level.submit(request, None, waiter=waiter)
    store.commits[0].set(tierd.Rejected("disk full"))
    assert isinstance(waiter.wait(0), tierd.Rejected)
    assert not manual.executor("worker").inbox


def test_a_commit_finds_its_reserved_room_even_if_requeued_messages_took_it():
    """Requeues ignore the limit; a committed message still gets in, as its room was promised."""
    store = HandCommittedStore()
    manual = ManualLevel([spec()], store=store, queue_limit=1)
    manual.level.set_paused("worker", paused=True)
    manual.level.submit(note(manual, "new"), None)
    manual.level.recover(Recovered([(note(manual, "recovered"), None)], [], []), None)
    store.commits[0].set(None)
    assert len(manual.level.queue) == 2
