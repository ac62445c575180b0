"""Requests and replies of one level: a daemon's request, correlation, and waking its waiter.

`RequestHandling` is the part of `Level` that deals with requests made from
the level and the replies coming back to them. A daemon's request blocks it
(BLOCKED) after the deadlock checks; the reply (or the timeout, or an error)
is set on the waiter and the daemon goes back to WORKING. Every method here
runs with the level's lock held, except the public entry points
(`deliver_reply`, `request`), which take it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..actors.states import DaemonState
from ..errors import Deadlock, Rejected, TierdError, UnknownRecipient
from .correlation import REPLY_HERE, PendingRequest
from .failures import run

if TYPE_CHECKING:
    import threading

    from .._deadlines import DeadlineHeap
    from .._outcome import Outcome
    from ..messaging.link import Router
    from ..messaging.message import Message
    from .correlation import Route
    from .deadlock import WaitForGraph
    from .failures import Due, Later
    from .slot import DaemonSlot
    from .stats import LevelCounters


class RequestHandling:
    """A level's requests and the replies to them."""

    _lock: threading.Lock
    _debug: bool
    router: Router
    wait_graph: WaitForGraph
    slots: dict[str, DaemonSlot]
    pending: dict[str, PendingRequest]
    deadlines: DeadlineHeap[Due]
    counters: LevelCounters
    log: Any

    if TYPE_CHECKING:  # provided by Level and its other mixins

        def _accept_or_reject(
            self,
            message: Message,
            route: Route,
            waiter: Outcome[Message | TierdError] | None,
            later: Later,
        ) -> Any:
            raise NotImplementedError

    def deliver_reply(self, reply: Message) -> None:
        """Hand over a reply to a request made from this level (the `ReplyRoute` side)."""
        with self._lock:
            self._resolve(reply)

    def _await_reply(
        self, request: Message, waiter: Outcome[Message | TierdError], requester: str | None
    ) -> None:
        """Remember that ``waiter`` waits here for the reply to ``request``."""
        pending = PendingRequest(request, waiter, requester, None)
        pending.deadline = self.deadlines.add(time.monotonic() + request.timeout, pending)
        self.pending[request.id] = pending

    def _reply(self, route: Route, reply: Message, later: Later) -> None:
        if route == REPLY_HERE:
            self._resolve(reply)
        elif route is not None:
            if self._debug:
                self.log.debug(
                    "message_replied", message_id=reply.parent_id, trace_id=reply.trace_id
                )
            later.append(lambda: route.deliver_reply(reply))  # type: ignore[union-attr]

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

    def request(
        self, daemon: str, generation: int, request: Message, waiter: Outcome[Message | TierdError]
    ) -> None:
        """A daemon asks, from its own thread: check for deadlock, BLOCK it, send the request.

        The outcome (reply or error) is set on ``waiter``.
        """
        later: Later = []
        with self._lock:
            error = self._request_error(daemon, generation, request)
            if error is not None:
                waiter.set(error)
                return
            slot = self.slots[daemon]
            slot.set_state(DaemonState.BLOCKED)
            self._await_reply(request, waiter, requester=daemon)
            if self._debug:
                self.log.debug(
                    "request_sent", message_id=request.id, trace_id=request.trace_id,
                    daemon=daemon, to=str(request.recipient),
                )  # fmt: skip
            self._accept_or_reject(request, REPLY_HERE, None, later)
        run(later)

    def _request_error(self, daemon: str, generation: int, request: Message) -> TierdError | None:
        """Why a daemon's request must fail at once, or None if it may go."""
        slot = self.slots[daemon]
        if generation != slot.generation:
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
