"""The orchestrator of one level: queue, dispatch, correlation, deadlines, supervision.

One `Orchestrator` actor per level owns everything about that level, and only
its own thread touches it, so none of it needs a lock. Daemons never see the
queue: the orchestrator hands a message to a daemon only when the daemon can
take it (IDLE, or fewer than ``prefetch`` in hand), and the daemon's
`Handled` report is both its answer and its "I am free again".
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final

from ..actors.base import TierdActor
from ..actors.daemon import DaemonActor
from ..actors.states import DaemonState
from ..errors import (
    Cancelled,
    Deadlock,
    Rejected,
    RemoteError,
    RequestTimeout,
    TierdError,
    UnknownRecipient,
)
from ..logging import get_logger
from ..messaging.message import Address, Message
from ..messaging.queue import LevelQueue, QueueEntry
from .commands import (
    Cancel,
    Drain,
    FailQueued,
    Handled,
    ListDeadLetters,
    ReplyArrived,
    Requesting,
    SetPaused,
    StartFailed,
    Submit,
    Sweep,
    TakeStatistics,
)
from .correlation import PendingRequest, ReplyRoute, ReplyWaiter, error_reply
from .dead_letters import DeadLetterBox
from .deadlines import DeadlineHeap
from .routing import LocalLink
from .slot import DaemonSlot, DaemonSpec
from .stats import LevelCounters, LevelStatistics

if TYPE_CHECKING:
    from .deadlock import WaitForGraph
    from .routing import Router

REPLY_HERE: Final = "reply-here"
"""Reply route of a request whose requester waits at this very orchestrator."""


class Orchestrator(TierdActor):
    """The Pykka actor that runs one level.

    Args:
        level: the level number.
        daemons: the daemons of the level, in config order.
        router: how to reach every level, this one included.
        wait_graph: the runtime's wait-for graph, for deadlock detection.
        queue_limit: the most messages the level queues; None for no limit.
        dead_letter_capacity: how many dead letters the level keeps.

    Raises:
        Exception: whatever a daemon's constructor raises, in the caller's thread.
    """

    def __init__(
        self,
        level: int,
        daemons: list[DaemonSpec],
        router: Router,
        wait_graph: WaitForGraph,
        queue_limit: int | None = None,
        dead_letter_capacity: int = 10_000,
    ) -> None:
        super().__init__()
        self.level = level
        self.router = router
        self.wait_graph = wait_graph
        self.queue = LevelQueue(queue_limit)
        self.slots = {spec.id: DaemonSlot(spec, Address(spec.id, level)) for spec in daemons}
        self.pending: dict[str, PendingRequest] = {}
        self.deadlines: DeadlineHeap[tuple[str, str]] = DeadlineHeap()
        self.counters = LevelCounters()
        self.dead_letters = DeadLetterBox(dead_letter_capacity)
        self.accepting = True
        self.link = LocalLink(level, self.actor_ref)
        self.log = get_logger(level=level)
        # Construct every daemon here, in the caller's thread, so that a bad
        # option fails the runtime's start instead of a restart loop.
        self._first_instances = {spec.id: spec.factory() for spec in daemons}

    # -- lifecycle (actor thread) ------------------------------------------

    def on_start(self) -> None:
        """Start every daemon's actor; runs in the orchestrator's thread."""
        for slot in self.slots.values():
            self._start_daemon(slot, self._first_instances.pop(slot.spec.id))

    def on_stop(self) -> None:
        """Fail what is left and stop every daemon's actor."""
        self._fail_everything("runtime stopped")
        for slot in self.slots.values():
            if slot.actor_ref is not None:
                slot.actor_ref.stop(block=False)

    def on_receive(self, message: Any) -> Any:
        """Act on one command; a bug here is logged, never allowed to stop the level."""
        try:
            return self._act(message)
        except Exception:
            self.log.exception("orchestrator_command_failed", command=type(message).__name__)
            return None

    def _act(self, message: Any) -> Any:  # noqa: PLR0912 - one case per command
        match message:
            case Submit():
                self._accept(message.message, message.reply_route, message.waiter)
            case Handled():
                self._handled(message)
            case ReplyArrived():
                self._resolve(message.reply)
            case Requesting():
                self._requesting(message)
            case Sweep():
                self._sweep(time.monotonic())
            case StartFailed():
                slot = self.slots[message.daemon]
                if message.generation == slot.generation:
                    self._crash(slot, message.error)
            case TakeStatistics():
                return self.statistics()
            case ListDeadLetters():
                return self.dead_letters.letters()
            case SetPaused():
                return self._set_paused(message.daemon, message.paused)
            case Cancel():
                return self._cancel(message.message_id)
            case Drain():
                self.accepting = False
                return len(self.queue) + sum(len(s.in_flight) for s in self.slots.values())
            case FailQueued():
                self._fail_everything(message.reason)
            case _:
                self.log.error("unknown_command", command=type(message).__name__)
        return None

    # -- messages in --------------------------------------------------------

    def _accept(
        self, message: Message, reply_route: ReplyRoute | str | None, waiter: ReplyWaiter | None
    ) -> None:
        """Take a message submitted to this level: queue it, forward it or refuse it."""
        if message.kind == "reply":
            self._resolve(message)
            return
        if waiter is not None:
            self._await_reply(message, waiter, requester=None)
            reply_route = REPLY_HERE
        recipient = message.recipient
        if recipient.level != self.level:
            self._forward(message, reply_route)
            return
        self.log.debug(
            "message_received", message_id=message.id, trace_id=message.trace_id,
            daemon=recipient.daemon, kind=message.kind,
        )  # fmt: skip
        slot = self.slots.get(recipient.daemon)
        if slot is None:
            self._refuse(
                message, reply_route, UnknownRecipient(str(recipient)), "unknown_recipient"
            )
            return
        if not self.accepting:
            self._refuse(message, reply_route, Rejected("runtime is stopping"), "stopped")
            return
        if slot.given_up:
            self._refuse(message, reply_route, self._given_up_error(slot), "daemon_gave_up")
            return
        now = time.monotonic()
        try:
            entry = self.queue.put(message, reply_route, now)
        except Rejected as full:
            self._refuse(message, reply_route, full, "queue_full")
            return
        self.counters.count_received(message.kind, message.priority)
        remaining = message.created_at + message.timeout - time.time()
        entry.deadline = self.deadlines.add(now + max(remaining, 0.0), ("queued", message.id))
        self.log.debug("message_queued", message_id=message.id, daemon=recipient.daemon)
        if slot.can_take():
            self._dispatch(slot)

    def _forward(self, message: Message, reply_route: ReplyRoute | str | None) -> None:
        link = self.router.link_for(message.recipient.level)
        if link is None:
            error = UnknownRecipient(str(message.recipient), f"no level {message.recipient.level}")
            self._refuse(message, reply_route, error, "unknown_recipient")
            return
        if reply_route == REPLY_HERE:
            reply_route = self.link
        link.submit(message, reply_route)  # type: ignore[arg-type]

    def _await_reply(self, request: Message, waiter: ReplyWaiter, requester: str | None) -> None:
        """Remember that ``waiter`` waits here for the reply to ``request``."""
        deadline = self.deadlines.add(time.monotonic() + request.timeout, ("pending", request.id))
        self.pending[request.id] = PendingRequest(request, waiter, requester, deadline)

    # -- dispatch -------------------------------------------------------------

    def _dispatch(self, slot: DaemonSlot) -> None:
        """Hand over messages to ``slot`` while it can take them."""
        queue = self.queue
        while slot.can_take():
            entry = queue.pop(slot.spec.id)
            if entry is None:
                return
            self.deadlines.cancel(entry.deadline)
            message = entry.message
            message.attempts += 1
            message.status = "in_progress"
            slot.in_flight[message.id] = entry
            if slot.state is DaemonState.IDLE:
                slot.set_state(DaemonState.WORKING)
            self.counters.dispatched += 1
            self.counters.dispatch_latency.observe(time.monotonic() - entry.enqueued_at)
            self.log.debug("message_dispatched", message_id=message.id, daemon=slot.spec.id)
            slot.actor_ref.tell(message)  # type: ignore[union-attr]

    def _handled(self, report: Handled) -> None:
        slot = self.slots[report.daemon]
        if report.generation != slot.generation:
            return  # a report from an actor replaced after a crash
        entry = slot.in_flight.pop(report.message_id)
        message = entry.message
        slot.handle_duration.observe(report.duration)
        if report.error is None:
            slot.processed += 1
            self.counters.processed += 1
            message.status = "done"
            self.log.debug("message_handled", message_id=message.id, daemon=slot.spec.id)
            if message.kind == "request":
                self.counters.completed["ok"] += 1
                self._reply(entry.reply_route, message.reply_to(report.result))
            if not slot.in_flight and slot.state is DaemonState.WORKING:
                slot.set_state(DaemonState.IDLE)
            self._dispatch(slot)
            return
        slot.errors += 1
        message.status = "error"
        error = RemoteError(
            str(slot.address), type(report.error).__name__, str(report.error), message.attempts
        )
        self.counters.completed["error"] += 1
        if message.kind == "request":
            self._reply(entry.reply_route, error_reply(message, error))
        else:
            self._dead_letter(message, "handler_error", str(error))
        self._crash(slot, report.error)

    # -- replies --------------------------------------------------------------

    def _reply(self, route: ReplyRoute | str | None, reply: Message) -> None:
        if route == REPLY_HERE:
            self._resolve(reply)
        elif route is not None:
            self.log.debug("message_replied", message_id=reply.parent_id, trace_id=reply.trace_id)
            route.deliver_reply(reply)  # type: ignore[union-attr]

    def _resolve(self, reply: Message) -> None:
        """Give a reply to whoever waits for it here; drop and count it if no one does."""
        pending = self.pending.pop(reply.parent_id or "", None)
        if pending is None:
            self.counters.late_replies += 1
            self.log.info("late_reply_dropped", parent_id=reply.parent_id, trace_id=reply.trace_id)
            return
        self.deadlines.cancel(pending.deadline)
        self._unblock(pending)
        pending.waiter.set(reply)

    def _unblock(self, pending: PendingRequest) -> None:
        if pending.requester is None:
            return
        slot = self.slots[pending.requester]
        self.wait_graph.unblock(str(slot.address))
        if slot.state is DaemonState.BLOCKED:
            slot.set_state(DaemonState.WORKING)

    def _requesting(self, command: Requesting) -> None:
        """A daemon asks: check for a deadlock, mark it BLOCKED and send the request."""
        slot = self.slots[command.daemon]
        request, waiter = command.request, command.waiter
        if command.generation != slot.generation:
            waiter.set(Rejected("the requesting daemon was replaced"))
            return
        target = str(request.recipient)
        try:
            self.router.check(request.recipient)
        except UnknownRecipient as unknown:
            waiter.set(unknown)
            return
        if target in request.wait_chain:
            chain = request.wait_chain
            waiter.set(Deadlock([chain[-1], *chain[chain.index(target) : -1]]))
            return
        cycle = self.wait_graph.block(str(slot.address), target)
        if cycle is not None:
            waiter.set(Deadlock(cycle))
            return
        slot.set_state(DaemonState.BLOCKED)
        self._await_reply(request, waiter, requester=slot.spec.id)
        self.log.debug("request_sent", message_id=request.id, daemon=slot.spec.id, to=target)
        if request.recipient.level == self.level:
            self._accept(request, REPLY_HERE, None)
        else:
            self._forward(request, REPLY_HERE)

    # -- failures -----------------------------------------------------------

    def _refuse(
        self, message: Message, route: ReplyRoute | str | None, error: TierdError, reason: str
    ) -> None:
        """Tell a request's sender why it failed, and dead-letter the message."""
        message.status = "error"
        if message.kind == "request" and route is not None:
            self._reply(route, error_reply(message, error))
        self._dead_letter(message, reason, str(error))

    def _dead_letter(self, message: Message, reason: str, detail: str) -> None:
        self.dead_letters.add(message, reason, detail)
        self.counters.count_dead_letter(reason)
        self.log.info(
            "message_dead_lettered", message_id=message.id, trace_id=message.trace_id,
            reason=reason, detail=detail,
        )  # fmt: skip

    def _sweep(self, now: float) -> None:
        """Expire what is due: queued messages, waiting requests, pending restarts."""
        for kind, key in self.deadlines.expired(now):
            if kind == "queued":
                entry = self.queue.remove(key)
                if entry is not None:
                    self._expire(entry)
            elif kind == "pending":
                pending = self.pending.pop(key, None)
                if pending is not None:
                    self._time_out(pending)
            elif kind == "restart":
                self._restart(self.slots[key])

    def _expire(self, entry: QueueEntry) -> None:
        """A message waited in the queue longer than its timeout: drop it, tell its sender."""
        message = entry.message
        self.counters.timeouts += 1
        message.status = "timeout"
        if message.kind == "request" and entry.reply_route is not None:
            timeout = RequestTimeout(message.id, str(message.recipient), message.timeout)
            self._reply(entry.reply_route, error_reply(message, timeout))
        self._dead_letter(
            message,
            "expired",
            f"waited longer than its timeout of {message.timeout:g}s in the queue",
        )

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

    def _crash(self, slot: DaemonSlot, error: BaseException) -> None:
        """Put a crashed daemon in ERROR, requeue what it held, schedule its restart."""
        slot.set_state(DaemonState.ERROR)
        if slot.actor_ref is not None:
            slot.actor_ref.stop(block=False)
            slot.actor_ref = None
        for entry in slot.in_flight.values():
            entry.message.status = "pending"
            self.queue.requeue(entry)
        slot.in_flight.clear()
        self._schedule_restart(slot, error)

    def _schedule_restart(self, slot: DaemonSlot, error: BaseException) -> None:
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
                self.deadlines.cancel(entry.deadline)
                self._refuse(entry.message, entry.reply_route, given_up, "daemon_gave_up")
            return
        self.log.warning("daemon_crashed", daemon=slot.spec.id, error=repr(error), restart_in=delay)
        self.deadlines.add(now + delay, ("restart", slot.spec.id))

    def _given_up_error(self, slot: DaemonSlot) -> RemoteError:
        policy = slot.spec.restart
        return RemoteError(
            str(slot.address),
            "DaemonGivenUp",
            f"the daemon crashed more than {policy.max_restarts} times in "
            f"{policy.window:g}s and is no longer restarted; fix it and restart the runtime",
        )

    def _restart(self, slot: DaemonSlot) -> None:
        try:
            instance = slot.spec.factory()
        except Exception as error:  # noqa: BLE001 - a failing constructor is one more crash
            self._schedule_restart(slot, error)
            return
        self._start_daemon(slot, instance)
        slot.set_state(DaemonState.IDLE)
        self.log.info("daemon_restarted", daemon=slot.spec.id, generation=slot.generation)
        self._dispatch(slot)

    def _start_daemon(self, slot: DaemonSlot, instance: Any) -> None:
        slot.generation += 1
        slot.actor_ref = DaemonActor.start(
            instance, slot.address, self.actor_ref, self.router, slot.generation
        )

    def _fail_everything(self, reason: str) -> None:
        """Fail every queued message and every waiting request: the runtime stops."""
        stopped = Rejected(reason)
        for entry in self.queue.entries():
            self.queue.remove(entry.message.id)
            self._refuse(entry.message, entry.reply_route, stopped, "stopped")
        for pending in list(self.pending.values()):
            self._unblock(pending)
            pending.waiter.set(stopped)
        self.pending.clear()

    # -- control ------------------------------------------------------------

    def _set_paused(self, daemon: str, paused: bool) -> bool:  # noqa: FBT001
        slot = self.slots.get(daemon)
        if slot is None:
            return False
        slot.paused = paused
        self.log.info("daemon_paused" if paused else "daemon_resumed", daemon=daemon)
        if not paused:
            self._dispatch(slot)
        return True

    def _cancel(self, message_id: str) -> bool:
        entry: QueueEntry | None = self.queue.remove(message_id)
        if entry is not None:
            self.deadlines.cancel(entry.deadline)
            entry.message.status = "cancelled"
            if entry.message.kind == "request" and entry.reply_route is not None:
                self._reply(entry.reply_route, error_reply(entry.message, Cancelled(message_id)))
            return True
        for slot in self.slots.values():
            entry = slot.in_flight.get(message_id)
            if entry is not None:
                entry.message.status = "cancelled"
                route, entry.reply_route = entry.reply_route, None
                if entry.message.kind == "request" and route is not None:
                    self._reply(route, error_reply(entry.message, Cancelled(message_id)))
                return True
        return False

    def statistics(self) -> LevelStatistics:
        """Take a snapshot of the level; call it in the orchestrator's thread."""
        counters = self.counters
        return LevelStatistics(
            level=self.level,
            received=dict(counters.received),
            dispatched=counters.dispatched,
            completed=dict(counters.completed),
            processed=counters.processed,
            timeouts=counters.timeouts,
            late_replies=counters.late_replies,
            dead_letters=dict(counters.dead_letters),
            queue_depth=self.queue.depth_by_priority(),
            in_flight_requests=len(self.pending),
            dispatch_latency=counters.dispatch_latency.snapshot(),
            daemons=tuple(
                slot.statistics(self.queue.depth_of(daemon)) for daemon, slot in self.slots.items()
            ),
        )
