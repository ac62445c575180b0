"""Backpressure: a full level refuses a message explicitly, or lets the sender wait for room.

A level queues at most ``queue_limit`` messages. Beyond it a send is refused
with ``Rejected("queue full")``, counted in ``tierd_messages_rejected_total``
(reason ``queue_full``), and nothing is kept: the sender still holds the
message and decides. A sender that asked to wait (``send(..., wait=True)``)
is parked in the level's *waiting room*, a bounded FIFO; the moment a queued
message leaves the queue (handed over, expired, cancelled) the oldest parked
message is admitted and its sender told, from the thread that made the room.
Nothing polls: the server only acts when room is made or a wait times out
(the wait's deadline is in the level's deadline heap).

`Backpressure` is mixed into `Level`; its methods run with the level's lock
held except `submit_waiting`, which takes it. The senders' callbacks run
after the lock is released (they may reach the bridge).
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any, Final

from ..errors import Rejected
from ..messaging.link import error_reply

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

    from .._deadlines import DeadlineHeap
    from .._outcome import Outcome
    from ..errors import TierdError
    from ..messaging.link import ReplyRoute
    from ..messaging.message import Message
    from ..messaging.queue import LevelQueue
    from .correlation import Route
    from .failures import Due, Later
    from .stats import LevelCounters

DEFAULT_WAITING_ROOM: Final = 1000
"""Senders that may wait for room at once, per level; more are refused at once."""


class RoomWaiter:
    """A message whose sender waits for room in a full level."""

    __slots__ = ("admitted", "deadline", "message", "route")

    def __init__(
        self, message: Message, route: Route, admitted: Callable[[TierdError | None], object]
    ) -> None:
        self.message = message
        self.route = route
        self.admitted = admitted
        self.deadline: Any = None


class Backpressure:
    """The queue limit and the waiting room of one level (mixed into `Level`)."""

    _lock: threading.Lock
    queue: LevelQueue
    deadlines: DeadlineHeap[Due]
    counters: LevelCounters
    waiting_room: dict[str, RoomWaiter]
    waiting_room_limit: int

    if TYPE_CHECKING:  # provided by Level and its other mixins

        def _accept(
            self,
            message: Message,
            route: Route,
            waiter: Outcome[Message | TierdError] | None,
            later: Later,
        ) -> Rejected | Outcome[Rejected | None] | None:
            raise NotImplementedError

        def _reply(self, route: Route, reply: Message, later: Later) -> None:
            raise NotImplementedError

    def _accept_or_reject(
        self,
        message: Message,
        route: Route,
        waiter: Outcome[Message | TierdError] | None,
        later: Later,
    ) -> Rejected | Outcome[Rejected | None] | None:
        """`_accept`, and if the queue is full, refuse: the returned error, or an error reply."""
        outcome = self._accept(message, route, waiter, later)
        if isinstance(outcome, Rejected):
            self._reject(message, route, outcome, later)
        return outcome

    def _reject(self, message: Message, route: Route, error: TierdError, later: Later) -> None:
        """Refuse a message for lack of room; a request's sender gets an error reply."""
        self.counters.count_rejected("queue_full")
        message.status = "error"
        if message.kind == "request" and route is not None:
            self._reply(route, error_reply(message, error), later)

    def submit_waiting(
        self,
        message: Message,
        reply_route: ReplyRoute | None,
        admitted: Callable[[TierdError | None], object],
    ) -> None:
        """Take a message, or if the level is full, park it until there is room.

        ``admitted`` is called once, without the lock: with None when the
        message got in, or with `Rejected` when the waiting room is full or
        the message's timeout passed first.
        """
        later: Later = []
        with self._lock:
            outcome = (
                self._accept(message, reply_route, None, later)
                if not self.waiting_room
                else Rejected("queue full")
            )
            if isinstance(outcome, Rejected):
                self._park(RoomWaiter(message, reply_route, admitted), outcome, later)
            else:
                later.append(functools.partial(_admit_when_committed, outcome, admitted))
        for action in later:
            action()

    def _park(self, waiter: RoomWaiter, full: Rejected, later: Later) -> None:
        message = waiter.message
        if len(self.waiting_room) >= self.waiting_room_limit:
            self._reject(message, waiter.route, full, later)
            later.append(functools.partial(waiter.admitted, full))
            return
        remaining = message.created_at + message.timeout - time.time()
        waiter.deadline = self.deadlines.add(time.monotonic() + max(remaining, 0.0), waiter)
        self.waiting_room[message.id] = waiter

    def _admit_waiting(self, later: Later) -> None:
        """Let parked messages in while there is room, oldest first."""
        room = self.waiting_room
        while room and not self.queue.full:
            waiter = room.pop(next(iter(room)))
            self.deadlines.cancel(waiter.deadline)
            outcome = self._accept(waiter.message, waiter.route, None, later)
            if isinstance(outcome, Rejected):
                later.append(functools.partial(waiter.admitted, outcome))
            else:
                later.append(functools.partial(_admit_when_committed, outcome, waiter.admitted))

    def _room_expired(self, waiter: RoomWaiter, later: Later) -> None:
        """A parked message's timeout passed before room was made: refuse it."""
        if self.waiting_room.pop(waiter.message.id, None) is None:
            return
        message = waiter.message
        error = Rejected(f"queue full: no room within the message's {message.timeout:g}s timeout")
        self._reject(message, waiter.route, error, later)
        later.append(functools.partial(waiter.admitted, error))

    def _fail_waiting_room(self, error: TierdError, later: Later) -> None:
        """Refuse every parked message: the runtime stops."""
        for waiter in self.waiting_room.values():
            self.deadlines.cancel(waiter.deadline)
            if waiter.message.kind == "request" and waiter.route is not None:
                self._reply(waiter.route, error_reply(waiter.message, error), later)
            later.append(functools.partial(waiter.admitted, error))
        self.waiting_room.clear()


def _admit_when_committed(
    commit: Outcome[Rejected | None] | None, admitted: Callable[[TierdError | None], object]
) -> None:
    """Tell a waiting sender it got in: now, or once a durable level's journal committed."""
    if commit is None:
        admitted(None)
    else:
        commit.add_done_callback(admitted)
