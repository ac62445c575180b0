"""A level driven by hand: no actors, no real time.

`ManualLevel` builds a `Level` with a `FakeClock` and an executor factory
that runs nothing: what the level tells a daemon is kept in that daemon's
inbox, and the test plays the daemon's thread with `handle_next`, exactly as
`DaemonActor.on_receive` does (handle, report, take the next one handed back).
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any

from tierd.messaging.link import Router
from tierd.orchestrators._deadlock import WaitForGraph
from tierd.orchestrators._level import Level
from tierd.orchestrators._slot import DaemonSpec
from tierd.testing import FakeClock

if TYPE_CHECKING:
    from collections.abc import Callable

    from tierd.messaging.message import Message


class ManualExecutor:
    """A daemon that is never run by itself: its inbox waits for the test."""

    def __init__(self, daemon: Any, generation: int) -> None:
        self.daemon = daemon
        self.generation = generation
        self.inbox: collections.deque[Message] = collections.deque()
        self.stopped = False

    def tell(self, message: Message) -> None:
        self.inbox.append(message)

    def stop(self) -> None:
        self.stopped = True


class ManualLevel:
    """A level of daemons ``specs`` on a fake clock, and the executors it started."""

    def __init__(self, specs: list[DaemonSpec], number: int = 1, **options: Any) -> None:
        self.clock = FakeClock()
        self.router = Router()
        self.started: list[tuple[str, ManualExecutor]] = []
        self.level = Level(
            number, specs, self.router, WaitForGraph(),
            clock=self.clock, executor_factory=self._start, **options,
        )  # fmt: skip
        self.router.add_local(number, self.level, frozenset(spec.id for spec in specs))
        self.level.start_daemons()

    def _start(
        self, daemon: Any, address: Any, host: Any, generation: int, log: Any
    ) -> ManualExecutor:
        executor = ManualExecutor(daemon, generation)
        self.started.append((address.daemon, executor))
        return executor

    def executor(self, daemon: str) -> ManualExecutor:
        """The daemon's newest executor."""
        return next(ex for name, ex in reversed(self.started) if name == daemon)

    def executors(self, daemon: str) -> list[ManualExecutor]:
        """The running executors of a daemon's instances (a pool has several), oldest first."""
        return [ex for name, ex in self.started if name == daemon and not ex.stopped]

    def handle_next(
        self,
        daemon: str,
        handler: Callable[[Message], Any] | None = None,
        *,
        one: bool = False,
        executor: ManualExecutor | None = None,
    ) -> list[Message]:
        """Play the daemon's thread: handle what it was told, and what is handed back.

        ``handler`` gives the result or raises; by default it echoes the
        payload. With ``one``, stop after one message. ``executor`` picks one
        instance of a pool; the newest executor by default.

        Returns:
            The messages handled, in order.
        """
        executor = executor or self.executor(daemon)
        handled: list[Message] = []
        message = executor.inbox.popleft() if executor.inbox else None
        while message is not None:
            handled.append(message)
            try:
                result, error = (handler or _echo)(message), None
            except Exception as raised:  # noqa: BLE001 - the level decides what a raise means
                result, error = None, raised
            message = self.level.finished(
                daemon, executor.generation, message.id, result, error, 0.001
            )
            if (one or error is not None) and message is not None:
                executor.inbox.appendleft(message)  # handed back: it waits for the next call
                break
            if error is not None:
                break
        return handled

    def advance(self, seconds: float) -> None:
        """Move the clock and sweep, as the orchestrator's tick would."""
        self.clock.advance(seconds)
        self.level.sweep()


def _echo(message: Message) -> Any:
    return message.payload


def spec(daemon: str = "worker", **options: Any) -> DaemonSpec:
    """A daemon spec whose instances are plain objects (the executor never runs them)."""
    return DaemonSpec(id=daemon, factory=object, **options)
