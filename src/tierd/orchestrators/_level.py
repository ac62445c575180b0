"""`Level`: the state of one level and every transition of it, under one lock.

The level owns its lock, its daemons' slots and every entry point: a caller
submitting a message, a daemon reporting that it finished or making a
request, another level delivering a reply, the orchestrator sweeping, an
operator pausing, cancelling or replaying. Each call holds the lock for a
few microseconds and hands a message to a daemon at the moment the daemon
can take it.

Each policy is a component with its own state that the level calls under
its lock and that returns a decision, never calling back: the priority queue
(`LevelQueue`) and the deadlines of what waits in it (`QueueExpiry`), the
requests waited on (`PendingRequests`), the waiting room of a full queue
(`WaitingRoom`), restarts (`Supervisor`), retries (`decide_retry` and
`RetryWaits`), dead letters (`DeadLetters`), and where accepted messages are
kept (`Store`: a `MemoryStore`, or a durable level's `Journal`). Time comes
from a `Clock`, and daemons are started through an `ExecutorFactory`, so a
test can drive a level with neither real time nor real actors.

Doing the hand-over in the thread that caused it is what makes tierd fast
under the GIL: a daemon that finishes a message takes its next one in its own
thread, with no wake-up of any other thread, and a reply wakes exactly the
thread that waits for it. Work that reaches another level (forwarding, a
reply to another level, a sender's callback) is collected in a `Later` list
and run after the lock is released, so two levels' locks are never held at
once.
"""

from __future__ import annotations

import collections
import functools
import itertools
import threading
from typing import TYPE_CHECKING, Any, TypeAlias

from .._clock import SYSTEM_CLOCK
from .._outcome import Outcome
from ..actors._executor import start_actor
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
from ..logging import debug_enabled, get_logger
from ..messaging.link import error_reply, settle
from ..messaging.message import Address, Message, new_id
from ._correlation import REPLY_HERE, PendingRequests
from ._dead_letters import DEFAULT_CAPACITY, DeadLetters
from ._delays import Delayed, Delays
from ._expiry import HandlingDeadlines, QueueExpiry
from ._queue import LevelQueue, QueueEntry
from ._retries import GiveUp, Retry, RetryWaits, decide_retry, poisoned
from ._slot import DaemonSlot
from ._stats import LevelCounters, LevelStatistics
from ._store import MemoryStore
from ._supervision import Restart, Resume, Stop, Supervisor
from ._waiting_room import DEFAULT_WAITING_ROOM, RoomWaiter, WaitingRoom

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from .._clock import Clock
    from ..actors._executor import ExecutorFactory
    from ..messaging.events import EventFanOut
    from ..messaging.link import Link, ReplyRoute, Router
    from ._correlation import PendingRequest, Route
    from ._dead_letters import DeadLetter
    from ._deadlock import WaitForGraph
    from ._journal import Recovered
    from ._retries import RetryDue
    from ._slot import DaemonSpec
    from ._store import Store

Later: TypeAlias = "list[Callable[[], object]]"
"""Actions to run once the level's lock is released: whatever reaches another level."""

Accepted: TypeAlias = "Rejected | Outcome[Rejected | None] | None"
"""What taking a message in returns: a full queue's refusal (the caller decides what
to do with it), the store's commit to wait for, or None."""


class _Uncommitted:
    """A message of a durable level accepted under the lock and not yet committed."""

    __slots__ = ("message", "pool", "route", "stored")

    def __init__(
        self,
        stored: Outcome[Rejected | None],
        message: Message,
        route: Route,
        pool: tuple[DaemonSlot, ...],
    ) -> None:
        self.stored = stored
        self.message = message
        self.route = route
        self.pool = pool


def run(later: Later) -> None:
    """Run the actions collected under the lock, now that it is released."""
    for action in later:
        action()


class Level:
    """One level: queue, daemons, pending requests, deadlines and counters.

    A `Link` (the runtime, other levels and the network hand it messages), a
    `ReplyRoute` (replies to its requests come back to it), and the
    `DaemonHost` of its daemons.

    Args:
        number: the level number.
        daemons: the daemons of the level, in config order.
        router: how to reach every level, this one included.
        wait_graph: the runtime's wait-for graph, for deadlock detection.
        queue_limit: the most messages the level queues; None for no limit.
        dead_letter_capacity: how many dead letters the level keeps.
        runtime_name: the runtime's name, bound into every log line of the level.
        waiting_room: how many senders may wait for room in a full queue at once.
        aging: seconds of waiting that move a message up one priority step; 0: strict.
        store: where accepted messages are kept: a durable level's started
            `Journal`; a `MemoryStore` (nothing kept) by default.
        clock: the time every deadline, backoff and timestamp is read from.
        executor_factory: starts a daemon instance (a Pykka actor by default).
        events: the runtime's events: each daemon's state changes, while anyone follows.

    Raises:
        Exception: whatever a daemon's constructor raises, in the caller's thread.
    """

    durable_identity = None
    """A level is the reply route of requests forwarded from it; none survives a restart."""

    def __init__(
        self,
        number: int,
        daemons: list[DaemonSpec],
        router: Router,
        wait_graph: WaitForGraph,
        *,
        queue_limit: int | None = None,
        dead_letter_capacity: int = DEFAULT_CAPACITY,
        runtime_name: str = "",
        waiting_room: int = DEFAULT_WAITING_ROOM,
        aging: float = 0.0,
        store: Store | None = None,
        clock: Clock = SYSTEM_CLOCK,
        executor_factory: ExecutorFactory = start_actor,
        events: EventFanOut | None = None,
    ) -> None:
        self.number = number
        self.router = router
        self.wait_graph = wait_graph
        self.runtime_name = runtime_name
        self.log = get_logger(runtime=runtime_name, level=number)
        self._debug = debug_enabled(self.log)
        """Whether per-message debug events are written; checked before building them."""
        self._monotonic = clock.monotonic
        self._time = clock.time
        self._start_executor = executor_factory
        self._store: Store = store if store is not None else MemoryStore()
        self._lock = threading.Lock()
        self.queue = LevelQueue(queue_limit, aging, clock.monotonic)
        self._queue_limit = queue_limit
        """The configured limit (`queue.limit` is lifted while reserved room is used)."""
        self._pools: dict[str, tuple[DaemonSlot, ...]] = {
            spec.id: tuple(
                DaemonSlot(spec, Address(spec.id, number), index, events=events, clock=clock)
                for index in range(spec.instances)
            )
            for spec in daemons
        }
        """Each daemon's instances, by daemon id; they share its address and queue lane."""
        self.slots = {slot.key: slot for pool in self._pools.values() for slot in pool}
        """Every instance, by its key (the daemon id, or ``id#index`` in a pool)."""
        self._generations = itertools.count(1)
        self._by_generation: dict[int, DaemonSlot] = {}
        """Each running instance by its executor's generation: who a report comes from."""
        """Executor generations, unique in the level: a report names its instance by it."""
        self._expiry = QueueExpiry()
        self._pending = PendingRequests()
        self._retries = RetryWaits()
        self._delays = Delays()
        self._room = WaitingRoom(waiting_room)
        self._supervisor = Supervisor(  # each instance has its own restart history
            {key: slot.spec.restart for key, slot in self.slots.items()},
            {key: slot.spec.supervision for key, slot in self.slots.items()},
        )
        self._handling = HandlingDeadlines()
        self._dead_letters = DeadLetters(dead_letter_capacity, self._store, clock.time)
        self._counters = LevelCounters()
        self._accepting = True
        self._uncommitted: collections.deque[_Uncommitted] = collections.deque()
        """Messages of a durable level waiting for their journal commit, in acceptance order."""
        self._take_in = self._enqueue_stored if self._store.durable else self._enqueue
        """How a message is taken in, chosen once: a level in memory skips the
        store's record and put (measured: 0.1 µs of the 3.3 µs a queued message costs)."""
        self._durable = self._store.durable
        """Whether the store keeps anything: the one question asked on the hot path.

        Every other step calls the store whatever it is (a `MemoryStore` does
        nothing), but a hand-over and a finish ask first: the two no-op calls
        cost 0.15 µs of the 2.8 µs a message takes there (benchmarks/hot_path.py,
        consume), a test of this flag a tenth of that."""
        # Build every daemon now, in the caller's thread, so that a bad option
        # fails the runtime's start instead of starting a restart loop.
        self._first_instances = {key: slot.spec.factory() for key, slot in self.slots.items()}

    # -- lifecycle ----------------------------------------------------------------

    def start_daemons(self) -> None:
        """Start every daemon."""
        with self._lock:
            for slot in self.slots.values():
                self._start_daemon(slot, self._first_instances.pop(slot.key))
                self._dispatch(slot)  # what a durable level recovered before its daemons ran

    def stop_daemons(self) -> None:
        """Ask every daemon to stop once it has finished what it holds."""
        with self._lock:
            for slot in self.slots.values():
                if slot.executor is not None:
                    slot.executor.stop()

    def stop_accepting(self) -> int:
        """Refuse new messages from now on; return how many are queued or in flight."""
        with self._lock:
            self._accepting = False
            in_flight = sum(len(slot.in_flight) for slot in self.slots.values())
            waiting = len(self._retries) + len(self._room) + len(self._uncommitted)
            return len(self.queue) + in_flight + waiting

    def _start_daemon(self, slot: DaemonSlot, instance: Any) -> None:
        self._by_generation.pop(slot.generation, None)  # reports of the old one are stale
        slot.generation = next(self._generations)
        self._by_generation[slot.generation] = slot
        slot.executor = self._start_executor(
            instance, slot.address, self, slot.generation, self.log
        )

    # -- messages in (the `Link`; any thread) ----------------------------------------

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
            return self._submit_waiting(message, reply_route)
        later: Later = []
        outcome: Accepted = None
        route: Route = reply_route
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
        return outcome  # type: ignore[return-value] # Outcome is invariant; Rejected is a TierdError

    def _submit_waiting(
        self, message: Message, reply_route: ReplyRoute | None
    ) -> Outcome[TierdError | None]:
        """Take a message, or if the level is full, park it until there is room."""
        admission: Outcome[TierdError | None] = Outcome()
        later: Later = []
        with self._lock:
            outcome = (
                self._accept(message, reply_route, None, later)
                if not self._room.parked.by_key
                else Rejected("queue full")
            )
            if isinstance(outcome, Rejected):
                self._park(RoomWaiter(message, reply_route, admission.set), outcome, later)
            else:
                later.append(functools.partial(_admit_when_stored, outcome, admission.set))
        run(later)
        return admission

    def _accept_or_reject(
        self,
        message: Message,
        route: Route,
        waiter: Outcome[Message | TierdError] | None,
        later: Later,
    ) -> Accepted:
        """`_accept`, and if the queue is full, refuse: the returned error, or an error reply."""
        outcome = self._accept(message, route, waiter, later)
        if isinstance(outcome, Rejected):
            self._reject(message, route, outcome, later)
        return outcome

    def _accept(
        self,
        message: Message,
        route: Route,
        waiter: Outcome[Message | TierdError] | None,
        later: Later,
    ) -> Accepted:
        """Queue, hand over, forward or refuse a message (see `Accepted`)."""
        if waiter is not None:
            self._pending.add(message, waiter, None, self._monotonic())
        recipient = message.recipient
        if recipient.level != self.number:
            self._forward(message, route, later)
            return None
        if self._debug:
            self.log.debug(
                "message_received", message_id=message.id, trace_id=message.trace_id,
                daemon=recipient.daemon, kind=message.kind,
            )  # fmt: skip
        pool = self._pools.get(recipient.daemon)
        # While stopping, only requests made by a daemon finishing its work (they
        # carry a wait chain) get in, so that WORKING daemons can finish.
        stopping = not self._accepting and not message.wait_chain
        if pool is None or stopping or (pool[0].given_up and _given_up(pool)):
            self._refuse(message, route, *self._refusal(pool, recipient, stopping=stopping), later)
            return None
        return self._take_in(message, route, pool, later)

    def _enqueue_stored(
        self, message: Message, route: Route, pool: tuple[DaemonSlot, ...], later: Later
    ) -> Accepted:
        """`_enqueue` for a durable level: the message is queued once its journal row is committed.

        Returns:
            A full queue's refusal, or the commit to wait for: the message is
            accepted when it settles with None, and withdrawn when it fails.
        """
        store = self._store
        try:
            identity = None if route is None or route == REPLY_HERE else route.durable_identity  # type: ignore[union-attr]
            row = store.record(message, identity)
        except Rejected as unstorable:
            self._refuse(message, route, unstorable, "not_journalable", later)
            return None
        if self._full():
            return Rejected("queue full")
        stored = store.put(row, message.attempts)
        if stored is None:  # a store with nothing to wait for
            return self._enqueue(message, route, pool, later)
        # Refused means not kept: the message is queued (or handed over) only once
        # its row is committed, so a failed write withdraws a message no daemon has
        # seen. Its room is reserved meanwhile. This callback is added before the
        # caller gets the outcome, so it runs before the sender is told either way.
        self._uncommitted.append(_Uncommitted(stored, message, route, pool))
        later.append(functools.partial(stored.add_done_callback, self._committed))
        return stored

    def _full(self) -> bool:
        """Whether the queue, with the messages waiting for their commit, is at its limit."""
        limit = self.queue.limit
        return limit is not None and len(self.queue) + len(self._uncommitted) >= limit

    def _committed(self, _error: Rejected | None) -> None:
        """Journal commits settled: queue what was stored, withdraw what was not; any thread.

        Runs in the journal's writer thread (or the submitter's, if the commit
        was quick), with no lock held. Commits settle in the order of the puts,
        so the messages are taken in the order they were accepted.
        """
        later: Later = []
        with self._lock:
            uncommitted = self._uncommitted
            while uncommitted and uncommitted[0].stored.done:
                item = uncommitted.popleft()
                error = item.stored.wait(0)
                if error is None:
                    args = item.message, item.route, item.pool, later
                    if self._enqueue(*args) is not None:  # retries requeued meanwhile
                        with self.queue.unlimited():  # its room was reserved at acceptance
                            self._enqueue(*args)
                else:
                    self._withdraw(item, error)
            if self._room.parked.by_key:
                self._admit_waiting(later)
        run(later)

    def _withdraw(self, item: _Uncommitted, error: Rejected) -> None:
        """A message whose journal write failed: count it and keep nothing of it.

        Its sender is told by whoever holds the commit's outcome (the ack path
        of the network, `Runtime.send`, a forwarding level); a request made
        here is answered at once.
        """
        message = item.message
        message.status = "error"
        self._counters.count_rejected("journal_failed")
        self.log.warning(
            "message_withdrawn", message_id=message.id, trace_id=message.trace_id,
            reason=str(error),
        )  # fmt: skip
        if item.route == REPLY_HERE:
            pending = self._pending.resolve(message.id)
            if pending is not None:
                self._unblock(pending)
                pending.waiter.set(error)

    def _enqueue(
        self, message: Message, route: Route, pool: tuple[DaemonSlot, ...], later: Later
    ) -> Rejected | None:
        """Hand ``message`` to an instance of ``pool`` now, or queue it; return a full queue."""
        not_before = message.not_before
        if not_before is not None:
            delay = not_before - self._time()
            if delay > 0:
                self._delays.hold(message, route, self._monotonic() + delay)
                return None
        recipient = message.recipient
        now = self._monotonic()
        slot: DaemonSlot | None = pool[0]
        if len(pool) != 1:  # a pool: an IDLE instance, else one with prefetch room
            slot = _free(pool)
        elif not slot.can_take():  # type: ignore[union-attr] # pool[0] is a slot
            slot = None
        if slot is not None and not self.queue.has_waiting(recipient.daemon):
            # Nothing is ahead of it and the daemon is free: skip the queue.
            self._counters.count_received(message.kind, message.priority)
            self._hand_over(slot, self.queue.unqueued(message, route, now), now)
            slot.executor.tell(message)  # type: ignore[union-attr] # can_take: it runs
            return None
        try:
            entry = self.queue.put(message, route, now)
        except Rejected as full:
            return full
        # `count_received` and `_set_expiry` inlined: once per queued message.
        received, key = self._counters.received, (message.kind, message.priority)
        received[key] = received.get(key, 0) + 1
        start = message.created_at if not_before is None else not_before  # `_set_expiry`
        remaining = start + message.timeout - self._time()
        self._expiry.add(entry, now + max(remaining, 0.0))
        if self._debug:
            self.log.debug(
                "message_queued", message_id=message.id, trace_id=message.trace_id,
                daemon=recipient.daemon,
            )  # fmt: skip
        return None

    def _set_expiry(self, entry: QueueEntry, now: float) -> None:
        """Give a queued entry its deadline: what is left of its message's timeout.

        A delayed message's timeout counts from its ``not_before``.
        """
        message = entry.message
        remaining = _queue_start(message) + message.timeout - self._time()
        self._expiry.add(entry, now + max(remaining, 0.0))

    def _refusal(
        self, pool: tuple[DaemonSlot, ...] | None, recipient: Address, *, stopping: bool
    ) -> tuple[TierdError, str]:
        """Why a message for ``recipient`` is refused, and the dead-letter reason."""
        if pool is None:
            return UnknownRecipient(str(recipient)), "unknown_recipient"
        if stopping:
            return Rejected("runtime is stopping"), "stopped"
        return self._given_up_error(pool[0]), "daemon_gave_up"

    def _forward(self, message: Message, route: Route, later: Later) -> None:
        link = self.router.link_for(message.recipient.level)
        if link is None:
            error = UnknownRecipient(str(message.recipient), f"no level {message.recipient.level}")
            self._refuse(message, route, error, "unknown_recipient", later)
            return
        onward: ReplyRoute | None = self if route == REPLY_HERE else route  # type: ignore[assignment]
        later.append(functools.partial(_forward_now, link, message, onward))

    # -- dispatch -------------------------------------------------------------------

    def _take(self, slot: DaemonSlot) -> Message | None:
        """Hand the next message to ``slot`` if it can take one now."""
        if not slot.can_take():
            return None
        entry = self.queue.pop(slot.spec.id)
        if entry is None:
            return None
        self._expiry.cancel(entry)
        self._hand_over(slot, entry, self._monotonic())
        return entry.message

    def _hand_over(self, slot: DaemonSlot, entry: QueueEntry, now: float) -> None:
        """Record that ``entry`` now belongs to ``slot``; the caller delivers it."""
        message = entry.message
        message.attempts += 1
        message.status = "in_progress"
        slot.in_flight[message.id] = entry
        if self._durable:
            self._store.attempt(message.id, message.attempts)
        if message.kind == "request":
            route = entry.reply_route
            if route is not None and route is not REPLY_HERE and route.durable_identity is not None:
                # Its caller is outside the runtime: the runtime owns its timeout.
                left = message.created_at + message.timeout - self._time()
                self._handling.add(slot.spec.id, entry, now + max(left, 0.0))
        if slot.state is DaemonState.IDLE:
            slot.set_state(DaemonState.WORKING)
        counters = self._counters
        counters.dispatched += 1
        counters.dispatch_latency.observe(now - entry.enqueued_at)
        if self._debug:
            self.log.debug(
                "message_dispatched", message_id=message.id, trace_id=message.trace_id,
                daemon=slot.spec.id,
            )  # fmt: skip

    def _dispatch(self, slot: DaemonSlot) -> None:
        """Tell ``slot``'s executor every message it can take now."""
        while (message := self._take(slot)) is not None:
            slot.executor.tell(message)  # type: ignore[union-attr] # can_take: it runs

    # -- the daemons' host (each daemon's own thread) ---------------------------------

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
            slot = self._by_generation.get(generation)  # generations are level-wide
            if slot is None:
                return None  # an executor replaced after a crash
            entry = slot.in_flight.pop(message_id)
            slot.handle_duration.observe(duration)
            next_message = None
            if error is None:
                self._handler_succeeded(slot, entry, result, later)
                goes_on = True
            else:
                goes_on = self._handler_failed(slot, entry, error, later)
            if goes_on and slot.restart_requested and not slot.in_flight:
                self._replace(slot)
            elif goes_on:
                # Take the next one in this thread, still WORKING; but with
                # messages in the executor's inbox (prefetch > 1) it must queue
                # behind them.
                next_message = None if slot.in_flight else self._take(slot)
                if not slot.in_flight and slot.state is DaemonState.WORKING:
                    slot.set_state(DaemonState.IDLE)
                if slot.spec.prefetch > 1:
                    self._dispatch(slot)
            if self._room.parked.by_key:
                self._admit_waiting(later)
        run(later)
        return next_message

    def _handler_succeeded(
        self, slot: DaemonSlot, entry: QueueEntry, result: Any, later: Later
    ) -> None:
        message = entry.message
        slot.processed += 1
        self._counters.processed += 1
        if self._durable:
            self._store.done(message.id)
        if self._debug:
            self.log.debug(
                "message_handled", message_id=message.id, trace_id=message.trace_id,
                daemon=slot.spec.id,
            )  # fmt: skip
        if message.kind == "request":
            self._handling.finished(message.id)
            if message.status == "timeout":  # its caller was told already
                self._counters.late_replies += 1
            else:
                self._counters.completed["ok"] += 1
                self._reply(entry.reply_route, message.reply_to(result), later)
        message.status = "done"

    def request(
        self, daemon: str, generation: int, request: Message, waiter: Outcome[Message | TierdError]
    ) -> None:
        """A daemon asks, from its own thread: check for deadlock, BLOCK it, send the request.

        The outcome (reply or error) is set on ``waiter``.
        """
        later: Later = []
        with self._lock:
            slot = self._by_generation.get(generation)  # generations are level-wide
            error = self._request_error(slot, request)
            if error is not None:
                waiter.set(error)
                return
            assert slot is not None  # a stale one has an error
            slot.set_state(DaemonState.BLOCKED)
            self._pending.add(request, waiter, slot.key, self._monotonic())
            if self._debug:
                self.log.debug(
                    "request_sent", message_id=request.id, trace_id=request.trace_id,
                    daemon=daemon, to=str(request.recipient),
                )  # fmt: skip
            self._accept_or_reject(request, REPLY_HERE, None, later)
        run(later)

    def _request_error(self, slot: DaemonSlot | None, request: Message) -> TierdError | None:
        """Why a daemon's request must fail at once, or None if it may go."""
        if slot is None:
            return Rejected("the requesting daemon was replaced")
        try:
            self.router.check(request.recipient)
        except UnknownRecipient as unknown:
            return unknown
        target, chain = str(request.recipient), request.wait_chain
        if target in chain:  # a cycle through this request's own callers
            return Deadlock([chain[-1], *chain[chain.index(target) : -1]])
        cycle = self.wait_graph.block(str(slot.address), target)
        return Deadlock(cycle) if cycle is not None else None

    def start_failed(self, daemon: str, generation: int, error: BaseException) -> None:
        """A daemon's ``on_start`` raised; called in the daemon's thread."""
        later: Later = []
        with self._lock:
            slot = self._by_generation.get(generation)  # generations are level-wide
            if slot is not None:
                self.log.error("daemon_start_failed", daemon=slot.key, exc_info=error)
                decision = self._supervisor.crashed(slot.key, self._monotonic())
                self._crash(slot, decision, error, later)
        run(later)

    # -- replies (the `ReplyRoute`; any thread) ---------------------------------------

    def deliver_reply(self, reply: Message) -> None:
        """Hand over a reply to a request made from this level."""
        with self._lock:
            self._resolve(reply)

    def _reply(self, route: Route, reply: Message, later: Later) -> None:
        if route == REPLY_HERE:
            self._resolve(reply)
        elif route is not None:
            if self._debug:
                self.log.debug(
                    "message_replied", message_id=reply.parent_id, trace_id=reply.trace_id
                )
            later.append(functools.partial(route.deliver_reply, reply))  # type: ignore[union-attr]

    def _resolve(self, reply: Message) -> None:
        """Give a reply to whoever waits for it here; drop and count it if no one does."""
        pending = self._pending.resolve(reply.parent_id or "")
        if pending is None:
            self._counters.late_replies += 1
            self.log.info("late_reply_dropped", parent_id=reply.parent_id, trace_id=reply.trace_id)
            return
        self._unblock(pending)
        pending.waiter.set(reply)

    def _unblock(self, pending: PendingRequest) -> None:
        if pending.requester is None:
            return
        slot = self.slots[pending.requester]
        self.wait_graph.unblock(str(slot.address))
        if slot.state is DaemonState.BLOCKED:
            slot.set_state(DaemonState.WORKING)

    # -- refusals and dead letters ------------------------------------------------------

    def _refuse(
        self, message: Message, route: Route, error: TierdError, reason: str, later: Later
    ) -> None:
        """Tell a request's sender why it failed, and dead-letter the message."""
        message.status = "error"
        if message.kind == "request" and route is not None:
            self._reply(route, error_reply(message, error), later)
        self._dead_letter(message, reason, str(error))

    def _reject(self, message: Message, route: Route, error: TierdError, later: Later) -> None:
        """Refuse a message for lack of room; a request's sender gets an error reply."""
        self._counters.count_rejected("queue_full")
        message.status = "error"
        if message.kind == "request" and route is not None:
            self._reply(route, error_reply(message, error), later)

    def _dead_letter(self, message: Message, reason: str, detail: str) -> None:
        self._dead_letters.add(message, reason, detail)
        self.log.info(
            "message_dead_lettered", message_id=message.id, trace_id=message.trace_id,
            reason=reason, detail=detail,
        )  # fmt: skip

    # -- the waiting room -----------------------------------------------------------------

    def _park(self, waiter: RoomWaiter, full: Rejected, later: Later) -> None:
        message = waiter.message
        remaining = message.created_at + message.timeout - self._time()
        if not self._room.park(waiter, self._monotonic() + max(remaining, 0.0)):
            self._reject(message, waiter.route, full, later)
            later.append(functools.partial(waiter.admitted, full))

    def _admit_waiting(self, later: Later) -> None:
        """Let parked messages in while there is room, oldest first."""
        while self._room.parked.by_key and not self._full():
            waiter = self._room.next()
            assert waiter is not None  # the room is not empty
            outcome = self._accept(waiter.message, waiter.route, None, later)
            if isinstance(outcome, Rejected):
                later.append(functools.partial(waiter.admitted, outcome))
            else:
                later.append(functools.partial(_admit_when_stored, outcome, waiter.admitted))

    def _room_expired(self, waiter: RoomWaiter, later: Later) -> None:
        """A parked message's timeout passed before room was made: refuse it."""
        message = waiter.message
        error = Rejected(f"queue full: no room within the message's {message.timeout:g}s timeout")
        self._reject(message, waiter.route, error, later)
        later.append(functools.partial(waiter.admitted, error))

    # -- deadlines (the orchestrator's sweep) ------------------------------------------------

    def sweep(self, now: float | None = None) -> None:
        """Expire what is due: queued messages, waiting requests, retries, waits, restarts.

        Args:
            now: monotonic seconds; the clock's by default.
        """
        later: Later = []
        with self._lock:
            now = self._monotonic() if now is None else now
            for entry in self._expiry.expired(now):
                self.queue.remove(entry.message.id)
                self._expire(entry, later)
            for pending in self._pending.expired(now):
                self._time_out(pending)
            for daemon, entry in self._handling.expired(now):
                self._time_out_in_hand(daemon, entry, later)
            for due in self._retries.expired(now):
                self._retry_due(due, later)
            for delayed in self._delays.due(now):
                self._delay_over(delayed, later)
            for waiter in self._room.expired(now):
                self._room_expired(waiter, later)
            for daemon in self._supervisor.due(now):
                self._restart(self.slots[daemon], later)
            self._admit_waiting(later)
        run(later)

    def _delay_over(self, delayed: Delayed, later: Later) -> None:
        """A delayed message's ``not_before`` has come: queue it as if it had just arrived.

        It was accepted already, so the queue's limit does not apply; if the
        wall clock was set back meanwhile, it waits again rather than go early.
        """
        message = delayed.message
        early = _queue_start(message) - self._time()
        if early > 0:
            self._delays.hold(message, delayed.reply_route, self._monotonic() + early)
            return
        pool = self._pools[message.recipient.daemon]
        if _given_up(pool):
            refusal = self._given_up_error(pool[0])
            self._refuse(message, delayed.reply_route, refusal, "daemon_gave_up", later)
            return
        with self.queue.unlimited():
            self._enqueue(message, delayed.reply_route, pool, later)

    def _expire(self, entry: QueueEntry, later: Later) -> None:
        """A message waited in the queue longer than its timeout: drop it, tell its sender."""
        message = entry.message
        self._counters.timeouts += 1
        if message.kind == "request":
            self._counters.completed["timeout"] += 1
        timeout = RequestTimeout(message.id, str(message.recipient), message.timeout)
        self._refuse(message, entry.reply_route, timeout, "expired", later)
        message.status = "timeout"

    def _time_out(self, pending: PendingRequest) -> None:
        request = pending.request
        self._counters.timeouts += 1
        self._counters.completed["timeout"] += 1
        self.log.info(
            "request_timed_out", message_id=request.id, trace_id=request.trace_id,
            to=str(request.recipient), timeout=request.timeout,
        )  # fmt: skip
        self._unblock(pending)
        pending.waiter.set(RequestTimeout(request.id, str(request.recipient), request.timeout))

    def _time_out_in_hand(self, daemon: str, entry: QueueEntry, later: Later) -> None:
        """A request from outside the runtime is still being handled at its deadline.

        Its caller is told `RequestTimeout` now, and the handler's reply,
        when it comes, is dropped and counted as late.
        """
        request = entry.message
        if request.status != "in_progress" or entry.reply_route is None:
            return  # cancelled meanwhile
        request.status = "timeout"
        self._counters.timeouts += 1
        self._counters.completed["timeout"] += 1
        self.log.info(
            "request_timed_out", message_id=request.id, trace_id=request.trace_id,
            daemon=daemon, timeout=request.timeout, handling=True,
        )  # fmt: skip
        timeout = RequestTimeout(request.id, str(request.recipient), request.timeout)
        self._reply(entry.reply_route, error_reply(request, timeout), later)

    # -- crashes, retries and restarts -------------------------------------------------------

    def _handler_failed(
        self, slot: DaemonSlot, entry: QueueEntry, error: BaseException, later: Later
    ) -> bool:
        """Fail or retry the message, then supervise the daemon; whether it goes on at once."""
        message = entry.message
        slot.errors += 1
        if message.kind == "request":
            self._handling.finished(message.id)
        decision = self._supervisor.failed(slot.key, error, self._monotonic())
        # Logged once the lock is released: formatting a traceback takes a while.
        later.append(
            functools.partial(
                self.log.error, "handler_failed", daemon=slot.key, message_id=message.id,
                trace_id=message.trace_id, attempts=message.attempts,
                directive=type(decision).__name__.lower(), exc_info=error,
            )
        )  # fmt: skip
        self._fail_message(slot, entry, error, later)
        if isinstance(decision, Resume):
            slot.set_state(DaemonState.ERROR)
            slot.set_state(DaemonState.IDLE)
            if slot.in_flight:
                slot.set_state(DaemonState.WORKING)
            return True
        self._crash(slot, decision, error, later)
        return False

    def _fail_message(
        self, slot: DaemonSlot, entry: QueueEntry, error: BaseException, later: Later
    ) -> None:
        """The message's handler raised: retry it, give it up, or fail it for its sender."""
        message = entry.message
        decision = decide_retry(slot.spec.retry, slot.spec.poison_after, message.attempts, error)
        if isinstance(decision, Retry):
            self._schedule_retry(slot, entry, decision.delay)
            return
        failure = self._failure(slot, message, error)
        if isinstance(decision, GiveUp):
            self._give_up(entry, failure, decision.reason, later)
            return
        self._counters.completed["error"] += 1
        if message.status == "timeout":  # its caller was told already
            message.status = "error"
            return
        message.status = "error"
        if message.kind == "request":
            self._reply(entry.reply_route, error_reply(message, failure), later)
            self._store.done(message.id)
        else:
            self._dead_letter(message, "handler_error", str(failure))

    @staticmethod
    def _failure(slot: DaemonSlot, message: Message, error: BaseException) -> TierdError:
        """What the sender is told: tierd errors as they are, plus this hop; others wrapped."""
        if isinstance(error, TierdError):
            error.via = (*error.via, str(slot.address))
            return error
        return RemoteError(str(slot.address), type(error).__name__, str(error), message.attempts)

    def _schedule_retry(self, slot: DaemonSlot, entry: QueueEntry, delay: float) -> None:
        message = entry.message
        message.status = "pending"
        self._counters.retries += 1
        self.log.info(
            "message_retry_scheduled", message_id=message.id, trace_id=message.trace_id,
            daemon=slot.spec.id, attempts=message.attempts, delay=delay,
        )  # fmt: skip
        self._retries.schedule(slot.spec.id, entry, self._monotonic() + delay)

    def _give_up(self, entry: QueueEntry, error: TierdError, reason: str, later: Later) -> None:
        """Dead-letter a message for good; its requester gets ``error`` (with the attempts)."""
        message = entry.message
        message.status = "error"
        self._counters.completed["error"] += 1
        if message.kind == "request" and entry.reply_route is not None:
            self._reply(entry.reply_route, error_reply(message, error), later)
        self._dead_letter(message, reason, f"{error} (after {message.attempts} attempts)")

    def _retry_due(self, due: RetryDue, later: Later) -> None:
        """A retry's backoff is over: queue the message again at its old place."""
        pool, entry = self._pools[due.daemon], due.entry
        if _given_up(pool):
            self._refuse(
                entry.message, entry.reply_route, self._given_up_error(pool[0]), "daemon_gave_up",
                later,
            )  # fmt: skip
            return
        self.queue.requeue(entry)
        self._set_expiry(entry, self._monotonic())
        for slot in pool:
            self._dispatch(slot)

    def _crash(
        self, slot: DaemonSlot, decision: Restart | Stop, error: BaseException, later: Later
    ) -> None:
        """Put a daemon in ERROR, stop its executor, requeue what it held; restart or give up."""
        slot.set_state(DaemonState.ERROR)
        self._retire(slot, later)
        if isinstance(decision, Restart):
            self.log.warning(
                "daemon_crashed", daemon=slot.key, error=repr(error),
                restart_in=decision.delay,
            )  # fmt: skip
        else:
            self._give_up_daemon(slot, decision.reason, error, later)

    def _retire(self, slot: DaemonSlot, later: Later) -> None:
        """Stop a daemon's executor; what it held and never handled is queued again."""
        if slot.executor is not None:
            slot.executor.stop()
            slot.executor = None
        now = self._monotonic()
        for entry in slot.in_flight.values():
            # Prefetched and never handled: the delivery did not reach the handler.
            message = entry.message
            message.attempts -= 1
            if poisoned(slot.spec.poison_after, message.attempts):
                poison = RemoteError(
                    str(slot.address), "Poison",
                    f"the message was delivered {message.attempts} times without being completed",
                    message.attempts,
                )  # fmt: skip
                self._give_up(entry, poison, "poison", later)
                continue
            message.status = "pending"
            self.queue.requeue(entry)
            self._set_expiry(entry, now)
        slot.in_flight.clear()

    def _give_up_daemon(
        self, slot: DaemonSlot, reason: str, error: BaseException, later: Later
    ) -> None:
        """Give a daemon up: it takes nothing until an operator restarts it."""
        slot.given_up = True
        slot.given_up_reason = reason
        slot.announce("given_up")
        self.log.error(
            "daemon_given_up", daemon=slot.key, error=repr(error), reason=reason,
            restarts=self._supervisor.restarts(slot.key),
        )  # fmt: skip
        if not _given_up(self._pools[slot.spec.id]):
            return  # other instances of the daemon still take its messages
        given_up = self._given_up_error(slot)
        for entry in self.queue.drain(slot.spec.id):
            self._expiry.cancel(entry)
            self._refuse(entry.message, entry.reply_route, given_up, "daemon_gave_up", later)

    @staticmethod
    def _given_up_error(slot: DaemonSlot) -> RemoteError:
        return RemoteError(
            str(slot.address),
            "DaemonGivenUp",
            f"the daemon was given up and is no longer restarted ({slot.given_up_reason}); "
            f"fix it, then run `tierd restart {slot.address}`",
        )

    def _restart(self, slot: DaemonSlot, later: Later) -> None:
        """A due restart: a fresh instance, or one more crash if its constructor raises."""
        try:
            instance = slot.spec.factory()
        except Exception as error:
            self.log.error("daemon_constructor_failed", daemon=slot.key, exc_info=error)
            decision = self._supervisor.crashed(slot.key, self._monotonic())
            if isinstance(decision, Stop):
                self._give_up_daemon(slot, decision.reason, error, later)
            return
        self._start_daemon(slot, instance)
        slot.set_state(DaemonState.IDLE)
        self.log.info("daemon_restarted", daemon=slot.key, generation=slot.generation)
        self._dispatch(slot)

    def _replace(self, slot: DaemonSlot) -> None:
        """An operator's restart of a live daemon, now that it holds nothing: a fresh instance."""
        slot.restart_requested = False
        try:
            instance = slot.spec.factory()
        except Exception as error:
            self.log.error("daemon_constructor_failed", daemon=slot.key, exc_info=error)
            return
        if slot.executor is not None:
            slot.executor.stop()
        self._start_daemon(slot, instance)
        if slot.state is not DaemonState.IDLE:
            slot.set_state(DaemonState.IDLE)
        slot.announce("restarted")
        self.log.info("daemon_restarted", daemon=slot.key, generation=slot.generation)
        self._dispatch(slot)

    def restart_daemon(self, daemon: str) -> bool:
        """Give ``daemon`` a fresh instance: at once if it is idle or given up, else when done.

        A given-up daemon comes back with its crash window cleared; a live one
        finishes the message in hand first. Its queue is kept.

        Returns:
            False if the level has no such daemon.
        """
        later: Later = []
        with self._lock:
            pool = self._pools.get(daemon)
            if pool is None:
                return False
            for slot in pool:  # every instance of a pool
                self.log.info("daemon_restart_requested", daemon=slot.key, given_up=slot.given_up)
                if slot.given_up:
                    slot.given_up = False
                    self._supervisor.reset(slot.key)
                    self._restart(slot, later)
                elif slot.executor is None:
                    pass  # its restart is due already, after its backoff
                elif slot.in_flight:
                    slot.restart_requested = True
                else:
                    self._replace(slot)
        run(later)
        return True

    # -- stopping and cancelling (any thread) ---------------------------------------------

    def fail_everything(self, reason: str) -> None:
        """Fail every queued message and every waiting request: the runtime stops.

        A durable level keeps its queued notifications: the next start delivers them.
        """
        later: Later = []
        with self._lock:
            stopped = Rejected(reason)
            for entry in self.queue.entries():
                self.queue.remove(entry.message.id)
                self._expiry.cancel(entry)
                if self._store.durable and entry.message.kind == "notification":
                    continue
                self._refuse(entry.message, entry.reply_route, stopped, "stopped", later)
            for due in self._retries.drain():
                self._refuse(due.entry.message, due.entry.reply_route, stopped, "stopped", later)
            for delayed in self._delays.drain():
                if self._store.durable and delayed.message.kind == "notification":
                    continue  # journaled: the next start holds it again
                self._refuse(delayed.message, delayed.reply_route, stopped, "stopped", later)
            for waiter in self._room.drain():
                if waiter.message.kind == "request" and waiter.route is not None:
                    self._reply(waiter.route, error_reply(waiter.message, stopped), later)
                later.append(functools.partial(waiter.admitted, stopped))
            for pending in self._pending.drain():
                self._unblock(pending)
                pending.waiter.set(stopped)
            for slot in self.slots.values():
                for entry in slot.in_flight.values():  # still being handled past the grace
                    self._tell_stopped(entry, stopped, later)
        run(later)

    def _tell_stopped(self, entry: QueueEntry, stopped: Rejected, later: Later) -> None:
        """Tell the caller of a request still in hand that it will get no reply."""
        message, route = entry.message, entry.reply_route
        if message.kind != "request" or route is None or route is REPLY_HERE:
            return  # a waiter here was told with the pending requests
        entry.reply_route = None
        message.status = "error"
        self._reply(route, error_reply(message, stopped), later)

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
        entry: QueueEntry | Delayed | None = self._retries.cancel(message_id)
        if entry is None:
            entry = self.queue.remove(message_id)
            if entry is not None:
                self._expiry.cancel(entry)
            else:
                entry = self._delays.cancel(message_id)
        if entry is not None:
            self._store.done(message_id)
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

    # -- operator control ---------------------------------------------------------------

    def set_paused(self, daemon: str, *, paused: bool) -> bool:
        """Pause or resume one daemon; False if the level has no such daemon.

        A paused daemon is handed nothing; its messages wait in the queue and
        still expire on time.
        """
        later: Later = []
        with self._lock:
            pool = self._pools.get(daemon)
            if pool is None:
                return False
            self.log.info("daemon_paused" if paused else "daemon_resumed", daemon=daemon)
            for slot in pool:
                slot.paused = paused
                slot.announce("paused" if paused else "resumed")
                self._dispatch(slot)
            if self._room.parked.by_key:
                self._admit_waiting(later)
        run(later)
        return True

    def statistics(self) -> LevelStatistics:
        """A snapshot of the level."""
        with self._lock:
            counters = self._counters
            return LevelStatistics(
                level=self.number,
                received=dict(counters.received),
                dispatched=counters.dispatched,
                completed=dict(counters.completed),
                processed=counters.processed,
                timeouts=counters.timeouts,
                late_replies=counters.late_replies,
                dead_letters=dict(self._dead_letters.counts),
                queue_depth=self.queue.depth_by_priority(),
                in_flight_requests=len(self._pending),
                dispatch_latency=counters.dispatch_latency.snapshot(),
                daemons=tuple(
                    slot.statistics(
                        self.queue.depth_of(slot.spec.id), self._supervisor.restarts(key)
                    )
                    for key, slot in self.slots.items()
                ),
                rejected=dict(counters.rejected),
                retries=counters.retries,
                waiting_for_room=len(self._room),
                dead_letters_kept=len(self._dead_letters),
                queue_limit=self._queue_limit,
                delayed=len(self._delays),
            )

    def dead_letter_list(self) -> list[DeadLetter]:
        """The dead letters kept, oldest first."""
        with self._lock:
            return self._dead_letters.letters()

    def purge_dead_letters(self, ids: Collection[str] | None = None) -> int:
        """Forget dead letters: those whose message id is in ``ids``, or all; how many."""
        with self._lock:
            return self._dead_letters.purge(ids)

    def replay_dead_letters(self, ids: Collection[str] | None = None) -> dict[str, str]:
        """Send dead letters again, as new messages; remove them from the box.

        Each replayed message gets a new id (so that no deduplication window
        drops it), a fresh timeout and zero attempts; its payload, priority,
        kind, sender, recipient and trace id are kept. A replayed request has
        no one waiting for its reply any more: the reply is dropped. A letter
        whose level refuses it again (queue full, unknown recipient) stays in
        the box.

        Args:
            ids: the message ids to replay; None replays every letter.

        Returns:
            Each replayed message's old id and its new id.
        """
        with self._lock:
            letters = self._dead_letters.take(ids)
        replayed: dict[str, str] = {}
        for letter in letters:
            old = letter.message
            fresh = old.replace(
                id=new_id(), created_at=self._time(), parent_id=None, status="pending",
                attempts=0, wait_chain=(),
            )  # fmt: skip
            try:
                settle(self.router.check(fresh.recipient).submit(fresh, None))
            except TierdError as refused:
                with self._lock:
                    self._dead_letters.put_back(letter, f"{letter.detail}; replay: {refused}")
                continue
            replayed[old.id] = fresh.id
        if replayed:
            with self._lock:
                self._dead_letters.forget_stored(list(replayed))
            self.log.info("dead_letters_replayed", count=len(replayed))
        return replayed

    # -- recovery of a durable level ----------------------------------------------------

    def recover(self, recovered: Recovered, route_for: Callable[[bytes], ReplyRoute] | None) -> int:
        """Requeue what a previous run accepted and did not handle; restore its dead letters.

        Each message keeps its id, priority and attempts, and its deadline
        (created_at + timeout): one that expired meanwhile is dead-lettered
        as ``expired``. Call it before the daemons start or after: either
        way the daemons get the messages as soon as they can.

        Args:
            recovered: what `Journal.recover` read.
            route_for: makes the reply route to a client's ZeroMQ identity;
                None if the runtime serves no network (such replies are dropped).

        Returns:
            How many messages were requeued.
        """
        later: Later = []
        requeued = 0
        with self._lock:
            for message, reason, detail, at in recovered.dead_letters:
                self._dead_letters.restore(message, reason, detail, at)
            now, wall = self._monotonic(), self._time()
            first = -len(recovered.messages)
            for sequence, (message, identity) in enumerate(recovered.messages, start=first):
                route = None
                if identity is not None and route_for is not None and message.kind == "request":
                    route = route_for(identity)
                if message.recipient.daemon not in self._pools:
                    missing = UnknownRecipient(str(message.recipient), "no longer in the config")
                    self._refuse(message, route, missing, "unknown_recipient", later)
                    continue
                if message.not_before is not None and message.not_before > wall:
                    self._delays.hold(message, route, now + message.not_before - wall)
                    requeued += 1
                    continue
                self._counters.count_received(message.kind, message.priority)
                if _queue_start(message) + message.timeout <= wall:
                    self._counters.timeouts += 1
                    expired = RequestTimeout(message.id, str(message.recipient), message.timeout)
                    self._refuse(message, route, expired, "expired", later)
                    continue
                # Negative sequences: ahead of anything new at the same priority,
                # in the order they were first accepted; the limit does not apply.
                entry = QueueEntry(message, route, now, sequence)
                self.queue.requeue(entry)
                self._set_expiry(entry, now)
                requeued += 1
            for slot in self.slots.values():
                if slot.executor is not None:
                    self._dispatch(slot)
        run(later)
        if requeued or recovered.dead_letters:
            self.log.info(
                "journal_recovered", requeued=requeued, dead_letters=len(recovered.dead_letters),
                handled_ids=len(recovered.handled),
            )  # fmt: skip
        return requeued


def _queue_start(message: Message) -> float:
    """When a message's time in the queue starts: its ``not_before``, or when it was made."""
    not_before = message.not_before
    return message.created_at if not_before is None else not_before


def _free(pool: tuple[DaemonSlot, ...]) -> DaemonSlot | None:
    """The instance to hand a message to now: an IDLE one first, else one with prefetch room."""
    room = None
    for slot in pool:
        if slot.can_take():
            if slot.state is DaemonState.IDLE:
                return slot
            if room is None:
                room = slot
    return room


def _given_up(pool: tuple[DaemonSlot, ...]) -> bool:
    """Whether every instance of a daemon is given up: then its messages are refused."""
    for slot in pool:  # noqa: SIM110 - a loop, not all(): it runs for every message taken in
        if not slot.given_up:
            return False
    return True


def _admit_when_stored(
    stored: Outcome[Rejected | None] | None, admitted: Callable[[TierdError | None], object]
) -> None:
    """Tell a waiting sender it got in: now, or once a durable level's journal committed."""
    if stored is None:
        admitted(None)
    else:
        stored.add_done_callback(admitted)


def _forward_now(link: Link, message: Message, route: ReplyRoute | None) -> None:
    """Hand a message to another level's link; a request's sender hears of a refusal."""
    try:
        settle(link.submit(message, route))
    except TierdError as refused:
        if message.kind != "request" or route is None:
            raise
        route.deliver_reply(error_reply(message, refused))
