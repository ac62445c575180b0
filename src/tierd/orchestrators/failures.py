"""What a level does when things go wrong: refusals, expiry, timeouts, crashes, restarts.

`FailureHandling` is the half of `Level` that deals with failure; `Level`
mixes it in. Every method here runs with the level's lock held, except the
public entry points, which take it. Anything that reaches another level (a
reply routed back to it) is collected in a `Later` list and run only after
the lock is released, so that no thread ever holds two levels' locks.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, TypeAlias

from ..actors.states import DaemonState
from ..errors import Cancelled, Rejected, RemoteError, RequestTimeout, TierdError
from ..messaging.link import error_reply
from ..messaging.queue import QueueEntry
from .backpressure import RoomWaiter
from .correlation import PendingRequest
from .retries import RetryDue

Due: TypeAlias = "QueueEntry | PendingRequest | DaemonSlot | RetryDue | RoomWaiter"
"""What a level's deadlines hold: a queued message, a waiting request, a due restart,
a retry whose backoff is over, a sender waiting for room."""

Later: TypeAlias = list["Callable[[], object]"]
"""Actions to run once the level's lock is released: whatever reaches another level."""


def run(later: Later) -> None:
    """Run the actions collected under the lock, now that it is released."""
    for action in later:
        action()


if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

    from .._deadlines import DeadlineHeap, FifoDeadlines
    from ..messaging.message import Message
    from ..messaging.queue import LevelQueue
    from .correlation import Route
    from .dead_letters import DeadLetterBox
    from .journal import Journal
    from .slot import DaemonSlot
    from .stats import LevelCounters


class FailureHandling:
    """Refusing, expiring, timing out, crashing and restarting, for one level."""

    _lock: threading.Lock
    queue: LevelQueue
    slots: dict[str, DaemonSlot]
    pending: dict[str, PendingRequest]
    deadlines: DeadlineHeap[Due]
    queued_deadlines: FifoDeadlines
    counters: LevelCounters
    dead_letters: DeadLetterBox
    retrying: dict[str, RetryDue]
    journal: Journal | None
    log: Any

    def _reply(self, route: Route, reply: Message, later: Later) -> None:
        raise NotImplementedError

    def _unblock(self, pending: PendingRequest) -> None:
        raise NotImplementedError

    def _dispatch(self, slot: DaemonSlot) -> None:
        raise NotImplementedError

    def _start_daemon(self, slot: DaemonSlot, instance: Any) -> None:
        raise NotImplementedError

    def _set_expiry(self, entry: QueueEntry, now: float) -> None:
        raise NotImplementedError

    if TYPE_CHECKING:  # provided by the other mixins of Level

        def _retry_or_give_up(
            self, slot: DaemonSlot, entry: QueueEntry, error: BaseException, later: Later
        ) -> bool:
            raise NotImplementedError

        def _requeue_or_poison(self, slot: DaemonSlot, entry: QueueEntry, later: Later) -> bool:
            raise NotImplementedError

        def _retry_due(self, due: RetryDue, later: Later) -> None:
            raise NotImplementedError

        def _admit_waiting(self, later: Later) -> None:
            raise NotImplementedError

        def _room_expired(self, waiter: RoomWaiter, later: Later) -> None:
            raise NotImplementedError

        def _fail_waiting_room(self, error: TierdError, later: Later) -> None:
            raise NotImplementedError

    # -- refusals and dead letters ------------------------------------------------

    def _refuse(
        self, message: Message, route: Route, error: TierdError, reason: str, later: Later
    ) -> None:
        """Tell a request's sender why it failed, and dead-letter the message."""
        message.status = "error"
        if message.kind == "request" and route is not None:
            self._reply(route, error_reply(message, error), later)
        self._dead_letter(message, reason, str(error))

    def _dead_letter(self, message: Message, reason: str, detail: str) -> None:
        letter = self.dead_letters.add(message, reason, detail)
        if self.journal is not None:
            self.journal.dead_letter(message, reason, detail, letter.at)
        self.counters.count_dead_letter(reason)
        self.log.info(
            "message_dead_lettered", message_id=message.id, trace_id=message.trace_id,
            reason=reason, detail=detail,
        )  # fmt: skip

    # -- deadlines ----------------------------------------------------------------

    def sweep(self, now: float | None = None) -> None:
        """Expire what is due: queued messages, waiting requests, pending restarts."""
        later: Later = []
        with self._lock:
            now = time.monotonic() if now is None else now
            for entry in self.queued_deadlines.expired(now):
                self.queue.remove(entry.message.id)
                self._expire(entry, later)
            for due in self.deadlines.expired(now):
                if isinstance(due, QueueEntry):
                    self.queue.remove(due.message.id)
                    self._expire(due, later)
                elif isinstance(due, PendingRequest):
                    del self.pending[due.request.id]
                    self._time_out(due)
                elif isinstance(due, RetryDue):
                    self._retry_due(due, later)
                elif isinstance(due, RoomWaiter):
                    self._room_expired(due, later)
                else:
                    self._restart(due, later)
            self._admit_waiting(later)
        run(later)

    def _cancel_deadline(self, entry: QueueEntry) -> None:
        """Forget a queued or retrying entry's deadline, wherever it is kept."""
        deadline = entry.deadline
        if type(deadline) is float:  # see `FifoDeadlines`: the handle is its float
            self.queued_deadlines.cancel(entry.message.timeout, entry)
        else:
            self.deadlines.cancel(deadline)

    def _expire(self, entry: QueueEntry, later: Later) -> None:
        """A message waited in the queue longer than its timeout: drop it, tell its sender."""
        message = entry.message
        self.counters.timeouts += 1
        timeout = RequestTimeout(message.id, str(message.recipient), message.timeout)
        self._refuse(message, entry.reply_route, timeout, "expired", later)
        message.status = "timeout"

    def _time_out(self, pending: PendingRequest) -> None:
        request = pending.request
        self.counters.timeouts += 1
        self.counters.completed["timeout"] += 1
        self.log.info(
            "request_timed_out", message_id=request.id, trace_id=request.trace_id,
            to=str(request.recipient), timeout=request.timeout,
        )  # fmt: skip
        self._unblock(pending)
        pending.waiter.set(RequestTimeout(request.id, str(request.recipient), request.timeout))

    # -- crashes and restarts -----------------------------------------------------

    def _handler_failed(
        self, slot: DaemonSlot, entry: QueueEntry, error: BaseException, later: Later
    ) -> None:
        message = entry.message
        slot.errors += 1
        if not self._retry_or_give_up(slot, entry, error, later):
            message.status = "error"
            remote = RemoteError(
                str(slot.address), type(error).__name__, str(error), message.attempts
            )
            self.counters.completed["error"] += 1
            if message.kind == "request":
                self._reply(entry.reply_route, error_reply(message, remote), later)
                if self.journal is not None:
                    self.journal.done(message.id)
            else:
                self._dead_letter(message, "handler_error", str(remote))
        self._crash(slot, error, later)

    def start_failed(self, daemon: str, generation: int, error: BaseException) -> None:
        """A daemon's ``on_start`` raised; called in the daemon's thread."""
        later: Later = []
        with self._lock:
            slot = self.slots[daemon]
            if generation == slot.generation:
                self._crash(slot, error, later)
        run(later)

    def _crash(self, slot: DaemonSlot, error: BaseException, later: Later) -> None:
        """Put a crashed daemon in ERROR, requeue what it held, schedule its restart."""
        slot.set_state(DaemonState.ERROR)
        if slot.actor_ref is not None:
            slot.actor_ref.stop(block=False)
            slot.actor_ref = None
        now = time.monotonic()
        for entry in slot.in_flight.values():
            # Prefetched and never handled: the delivery did not reach the handler.
            entry.message.attempts -= 1
            if self._requeue_or_poison(slot, entry, later):
                entry.message.status = "pending"
                self.queue.requeue(entry)
                self._set_expiry(entry, now)
        slot.in_flight.clear()
        self._schedule_restart(slot, error, later)

    def _schedule_restart(self, slot: DaemonSlot, error: BaseException, later: Later) -> None:
        """Restart an ERROR daemon after its backoff, or give it up for good."""
        now = time.monotonic()
        delay = slot.restart_tracker.next_delay(now)
        if delay is None:
            slot.given_up = True
            self.log.error(
                "daemon_given_up", daemon=slot.spec.id, error=repr(error),
                restarts=slot.restart_tracker.total_restarts,
            )  # fmt: skip
            given_up = self._given_up_error(slot)
            for entry in self.queue.drain(slot.spec.id):
                self._cancel_deadline(entry)
                self._refuse(entry.message, entry.reply_route, given_up, "daemon_gave_up", later)
            return
        self.log.warning("daemon_crashed", daemon=slot.spec.id, error=repr(error), restart_in=delay)
        self.deadlines.add(now + delay, slot)

    def _given_up_error(self, slot: DaemonSlot) -> RemoteError:
        policy = slot.spec.restart
        return RemoteError(
            str(slot.address),
            "DaemonGivenUp",
            f"the daemon crashed more than {policy.max_restarts} times in "
            f"{policy.window:g}s and is no longer restarted; fix it and restart the runtime",
        )

    def _restart(self, slot: DaemonSlot, later: Later) -> None:
        try:
            instance = slot.spec.factory()
        except Exception as error:  # noqa: BLE001 - a failing constructor is one more crash
            self._schedule_restart(slot, error, later)
            return
        self._start_daemon(slot, instance)
        slot.set_state(DaemonState.IDLE)
        self.log.info("daemon_restarted", daemon=slot.spec.id, generation=slot.generation)
        self._dispatch(slot)

    # -- stopping and cancelling (any thread) -------------------------------------

    def fail_everything(self, reason: str) -> None:
        """Fail every queued message and every waiting request: the runtime stops."""
        later: Later = []
        with self._lock:
            stopped = Rejected(reason)
            for entry in self.queue.entries():
                self.queue.remove(entry.message.id)
                self._cancel_deadline(entry)
                if self.journal is not None and entry.message.kind == "notification":
                    continue  # stays in the journal: the next start delivers it
                self._refuse(entry.message, entry.reply_route, stopped, "stopped", later)
            for due in self.retrying.values():
                self._cancel_deadline(due.entry)
                entry = due.entry
                self._refuse(entry.message, entry.reply_route, stopped, "stopped", later)
            self.retrying.clear()
            self._fail_waiting_room(stopped, later)
            for pending in list(self.pending.values()):
                self._unblock(pending)
                pending.waiter.set(stopped)
            self.pending.clear()
        run(later)

    def cancel(self, message_id: str) -> bool:
        """Cancel a queued message, or discard the reply of one in progress.

        Its requester gets `Cancelled`. Returns False if the level does not
        hold the message.
        """
        later: Later = []
        with self._lock:
            found = self._cancel(message_id, later)
            if found:
                self._admit_waiting(later)
        run(later)
        return found

    def _cancel(self, message_id: str, later: Later) -> bool:
        retrying = self.retrying.pop(message_id, None)
        entry = self.queue.remove(message_id) if retrying is None else retrying.entry
        if entry is not None:
            self._cancel_deadline(entry)
            if self.journal is not None:
                self.journal.done(message_id)
        else:
            held = (slot.in_flight.get(message_id) for slot in self.slots.values())
            entry = next((e for e in held if e is not None), None)
            if entry is None:
                return False
        message, route = entry.message, entry.reply_route
        entry.reply_route = None  # a reply from a handler still running is discarded
        message.status = "cancelled"
        if message.kind == "request" and route is not None:
            self._reply(route, error_reply(message, Cancelled(message_id)), later)
        return True
