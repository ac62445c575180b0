"""`Level`: the state of one level and every transition of it, under one lock.

The level's queue, its daemons' states, the requests its daemons wait on, its
deadlines and its counters live here. Any thread may call in: a caller
submitting a message, a daemon reporting that it finished or making a
request, another level delivering a reply, the orchestrator sweeping. Each
call holds the level's lock for a few microseconds and hands a message to a
daemon at the moment the daemon can take it.

Doing the hand-over in the thread that caused it is what makes tierd fast
under the GIL: a daemon that finishes a message takes its next one in its own
thread, with no wake-up of any other thread, and a reply wakes exactly the
thread that waits for it. Work that reaches another level (forwarding, a
reply to another level) is done after the lock is released, so two levels'
locks are never held at once.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from .._deadlines import DeadlineHeap, FifoDeadlines
from .._outcome import Outcome
from ..actors.daemon import DaemonActor
from ..actors.states import DaemonState
from ..errors import Rejected, TierdError, UnknownRecipient
from ..logging import debug_enabled, get_logger
from ..messaging.link import error_reply, settle
from ..messaging.message import Address, Message
from ..messaging.queue import LevelQueue
from .backpressure import DEFAULT_WAITING_ROOM, Backpressure, RoomWaiter
from .control import LevelControl
from .correlation import REPLY_HERE, Route
from .dead_letters import DeadLetterBox
from .durability import DurableHandling
from .failures import Due, FailureHandling, Later, run
from .requests import RequestHandling
from .retries import RetryDue, RetryHandling
from .slot import DaemonSlot, DaemonSpec
from .stats import LevelCounters

if TYPE_CHECKING:
    from ..messaging.link import Link, ReplyRoute, Router
    from ..messaging.queue import QueueEntry
    from .correlation import PendingRequest
    from .deadlock import WaitForGraph
    from .journal import Journal


class Level(
    RequestHandling, FailureHandling, RetryHandling, Backpressure, LevelControl, DurableHandling
):
    """One level: queue, daemons, pending requests, deadlines and counters.

    Args:
        number: the level number.
        daemons: the daemons of the level, in config order.
        router: how to reach every level, this one included.
        wait_graph: the runtime's wait-for graph, for deadlock detection.
        queue_limit: the most messages the level queues; None for no limit.
        dead_letter_capacity: how many dead letters the level keeps.
        waiting_room: how many senders may wait for room in a full queue at once.
        aging: seconds of waiting that move a message up one priority step; 0: strict.
        runtime_name: the runtime's name, bound into every log line of the level.
        journal: for a durable level, its started journal; None for a level
            whose queue lives in memory only.

    Raises:
        Exception: whatever a daemon's constructor raises, in the caller's thread.
    """

    def __init__(
        self,
        number: int,
        daemons: list[DaemonSpec],
        router: Router,
        wait_graph: WaitForGraph,
        queue_limit: int | None = None,
        dead_letter_capacity: int = 10_000,
        runtime_name: str = "",
        waiting_room: int = DEFAULT_WAITING_ROOM,
        aging: float = 0.0,
        journal: Journal | None = None,
    ) -> None:
        self.number = number
        self.router = router
        self.wait_graph = wait_graph
        self.queue = LevelQueue(queue_limit, aging)
        self.slots = {spec.id: DaemonSlot(spec, Address(spec.id, number)) for spec in daemons}
        self.pending: dict[str, PendingRequest] = {}
        self.deadlines: DeadlineHeap[Due] = DeadlineHeap()
        self.queued_deadlines = FifoDeadlines()
        """Deadlines of queued messages that arrive in order; the rest are in `deadlines`."""
        self.counters = LevelCounters()
        self.dead_letters = DeadLetterBox(dead_letter_capacity)
        self.retrying: dict[str, RetryDue] = {}
        """Messages waiting out a retry backoff, by id."""
        self.waiting_room: dict[str, RoomWaiter] = {}
        """Senders waiting for room in the full queue, oldest first."""
        self.waiting_room_limit = waiting_room
        self.accepting = True
        self.journal = journal
        self.runtime_name = runtime_name
        self.log = get_logger(runtime=runtime_name, level=number)
        self._debug = debug_enabled(self.log)
        """Whether per-message debug events are written; checked before building them."""
        self._lock = threading.Lock()
        # Build every daemon now, in the caller's thread, so that a bad option
        # fails the runtime's start instead of starting a restart loop.
        self._first_instances = {spec.id: spec.factory() for spec in daemons}

    # -- lifecycle ------------------------------------------------------------

    def start_daemons(self) -> None:
        """Start every daemon's actor."""
        with self._lock:
            for slot in self.slots.values():
                self._start_daemon(slot, self._first_instances.pop(slot.spec.id))
                self._dispatch(slot)  # what a durable level recovered before its daemons ran

    def stop_daemons(self) -> None:
        """Ask every daemon's actor to stop once it has finished what it holds."""
        with self._lock:
            for slot in self.slots.values():
                if slot.actor_ref is not None:
                    slot.actor_ref.stop(block=False)

    def stop_accepting(self) -> int:
        """Refuse new messages from now on; return how many are queued or in flight."""
        with self._lock:
            self.accepting = False
            in_flight = sum(len(slot.in_flight) for slot in self.slots.values())
            return len(self.queue) + in_flight + len(self.retrying) + len(self.waiting_room)

    def _start_daemon(self, slot: DaemonSlot, instance: Any) -> None:
        slot.generation += 1
        slot.actor_ref = DaemonActor.start(instance, slot.address, self, slot.generation)

    # -- messages in (any thread) ---------------------------------------------

    durable_identity = None
    """A level is the reply route of its own requests; none survives a restart."""

    def submit(
        self,
        message: Message,
        reply_route: ReplyRoute | None,
        *,
        wait: bool = False,
        waiter: Outcome[Message | TierdError] | None = None,
    ) -> Outcome[TierdError | None] | None:
        """Take a message for this level: queue it, forward it, or refuse it (see `Link`).

        Args:
            message: the message; a reply is handed to whoever waits for it here.
            reply_route: where the reply to a request goes.
            wait: if the queue is full, park the message until there is room.
            waiter: for a request made outside every daemon, who waits here
                for its reply; the level correlates it and times it out.

        Returns:
            None once accepted; on a durable level, the journal commit's
            outcome; with ``wait``, the outcome of the wait for room.

        Raises:
            Rejected: the queue is full and no reply route will tell the
                sender (a notification; a request's sender gets it as its reply).
        """
        if wait:
            admission: Outcome[TierdError | None] = Outcome()
            self.submit_waiting(message, reply_route, admission.set)
            return admission
        later: Later = []
        outcome, route = None, reply_route  # type: Rejected | Outcome[Rejected | None] | None, Route
        with self._lock:
            if message.kind == "reply":
                self._resolve(message)
            else:
                route = REPLY_HERE if waiter is not None else reply_route
                outcome = self._accept_or_reject(message, route, waiter, later)
        run(later)
        if isinstance(outcome, Rejected):
            if route is None:  # no reply will tell anyone
                raise outcome
            return None
        return outcome  # type: ignore[return-value]

    def _accept(
        self,
        message: Message,
        route: Route,
        waiter: Outcome[Message | TierdError] | None,
        later: Later,
    ) -> Rejected | Outcome[Rejected | None] | None:
        """Queue, hand over, forward or refuse a message.

        Returns:
            `Rejected` for a full queue (returned, not handled: the caller
            decides); on a durable level, the journal `Commit` the caller
            waits for once the lock is released; otherwise None.
        """
        if waiter is not None:
            self._await_reply(message, waiter, requester=None)
        recipient = message.recipient
        if recipient.level != self.number:
            self._forward(message, route, later)
            return None
        if self._debug:
            self.log.debug(
                "message_received", message_id=message.id, trace_id=message.trace_id,
                daemon=recipient.daemon, kind=message.kind,
            )  # fmt: skip
        slot = self.slots.get(recipient.daemon)
        # While stopping, only requests made by a daemon finishing its work (they
        # carry a wait chain) get in, so that WORKING daemons can finish.
        stopping = not self.accepting and not message.wait_chain
        if slot is None or slot.given_up or stopping:
            self._refuse(message, route, *self._refusal(slot, recipient, stopping=stopping), later)
            return None
        if self.journal is not None:
            return self._accept_durably(message, route, slot, later)
        return self._enqueue(message, route, slot)

    def _enqueue(self, message: Message, route: Route, slot: DaemonSlot) -> Rejected | None:
        """Hand ``message`` to ``slot`` now, or queue it; a full queue is returned."""
        recipient = message.recipient
        now = time.monotonic()
        if slot.can_take() and not self.queue.has_waiting(recipient.daemon):
            # Nothing is ahead of it and the daemon is free: skip the queue.
            self.counters.count_received(message.kind, message.priority)
            self._hand_over(slot, self.queue.unqueued(message, route, now), now)
            slot.actor_ref.tell(message)  # type: ignore[union-attr]
            return None
        try:
            entry = self.queue.put(message, route, now)
        except Rejected as full:
            return full
        # `count_received` and `_set_expiry` inlined: once per queued message.
        received, key = self.counters.received, (message.kind, message.priority)
        received[key] = received.get(key, 0) + 1
        remaining = message.created_at + message.timeout - time.time()
        at = now + max(remaining, 0.0)
        if not self.queued_deadlines.add(message.timeout, at, entry):
            entry.deadline = self.deadlines.add(at, entry)
        if self._debug:
            self.log.debug(
                "message_queued", message_id=message.id, trace_id=message.trace_id,
                daemon=recipient.daemon,
            )  # fmt: skip
        return None

    def _set_expiry(self, entry: QueueEntry, now: float) -> None:
        """Give a queued entry its deadline: what is left of its message's timeout."""
        message = entry.message
        remaining = message.created_at + message.timeout - time.time()
        at = now + max(remaining, 0.0)
        if not self.queued_deadlines.add(message.timeout, at, entry):
            entry.deadline = self.deadlines.add(at, entry)

    def _refusal(
        self, slot: DaemonSlot | None, recipient: Address, *, stopping: bool
    ) -> tuple[TierdError, str]:
        """Why a message for ``recipient`` is refused, and the dead-letter reason."""
        if slot is None:
            return UnknownRecipient(str(recipient)), "unknown_recipient"
        if stopping:
            return Rejected("runtime is stopping"), "stopped"
        return self._given_up_error(slot), "daemon_gave_up"

    def _forward(self, message: Message, route: Route, later: Later) -> None:
        link = self.router.link_for(message.recipient.level)
        if link is None:
            error = UnknownRecipient(str(message.recipient), f"no level {message.recipient.level}")
            self._refuse(message, route, error, "unknown_recipient", later)
            return
        onward: ReplyRoute | None = self if route == REPLY_HERE else route  # type: ignore[assignment]
        later.append(lambda: _forward_now(link, message, onward))

    # -- dispatch ---------------------------------------------------------------

    def _take(self, slot: DaemonSlot) -> Message | None:
        """Hand the next message to ``slot`` if it can take one now."""
        if not slot.can_take():
            return None
        entry = self.queue.pop(slot.spec.id)
        if entry is None:
            return None
        self._cancel_deadline(entry)
        self._hand_over(slot, entry, time.monotonic())
        return entry.message

    def _hand_over(self, slot: DaemonSlot, entry: QueueEntry, now: float) -> None:
        """Record that ``entry`` now belongs to ``slot``; the caller delivers it."""
        message = entry.message
        message.attempts += 1
        message.status = "in_progress"
        slot.in_flight[message.id] = entry
        if self.journal is not None:
            self.journal.attempt(message.id, message.attempts)
        if slot.state is DaemonState.IDLE:
            slot.set_state(DaemonState.WORKING)
        self.counters.dispatched += 1
        self.counters.dispatch_latency.observe(now - entry.enqueued_at)
        if self._debug:
            self.log.debug(
                "message_dispatched", message_id=message.id, trace_id=message.trace_id,
                daemon=slot.spec.id,
            )  # fmt: skip

    def _dispatch(self, slot: DaemonSlot) -> None:
        """Tell ``slot``'s actor every message it can take now."""
        while (message := self._take(slot)) is not None:
            slot.actor_ref.tell(message)  # type: ignore[union-attr]

    def finished(
        self,
        daemon: str,
        generation: int,
        message_id: str,
        result: Any,
        error: BaseException | None,
        duration: float,
    ) -> Message | None:
        """A daemon finished a message; called in the daemon's own thread.

        Returns:
            The next message for the daemon to handle right away, in its own
            thread, or None if it has nothing (or must not take anything now).
        """
        later: Later = []
        with self._lock:
            slot = self.slots[daemon]
            if generation != slot.generation:
                return None  # an actor replaced after a crash
            entry = slot.in_flight.pop(message_id)
            slot.handle_duration.observe(duration)
            if error is not None:
                self._handler_failed(slot, entry, error, later)
                next_message = None
            else:
                self._handler_succeeded(slot, entry, result, later)
                # Take the next one in this thread, still WORKING; but with
                # messages in the actor's inbox (prefetch > 1) it must queue
                # behind them.
                next_message = None if slot.in_flight else self._take(slot)
                if not slot.in_flight and slot.state is DaemonState.WORKING:
                    slot.set_state(DaemonState.IDLE)
                if slot.spec.prefetch > 1:
                    self._dispatch(slot)
            if self.waiting_room:
                self._admit_waiting(later)
        run(later)
        return next_message

    def _handler_succeeded(
        self, slot: DaemonSlot, entry: QueueEntry, result: Any, later: Later
    ) -> None:
        message = entry.message
        slot.processed += 1
        self.counters.processed += 1
        message.status = "done"
        if self.journal is not None:
            self.journal.done(message.id)
        if self._debug:
            self.log.debug(
                "message_handled", message_id=message.id, trace_id=message.trace_id,
                daemon=slot.spec.id,
            )  # fmt: skip
        if message.kind == "request":
            self.counters.completed["ok"] += 1
            self._reply(entry.reply_route, message.reply_to(result), later)


def _forward_now(link: Link, message: Message, route: ReplyRoute | None) -> None:
    """Hand a message to another level's link; a request's sender hears of a refusal."""
    try:
        accepted = link.submit(message, route)
        if accepted is not None:
            settle(accepted)
    except TierdError as refused:
        if message.kind != "request" or route is None:
            raise
        route.deliver_reply(error_reply(message, refused))
