"""What runs a daemon: the Pykka actor that owns its thread, and the seam a level starts it by.

A level does not start actors itself: it is given an `ExecutorFactory` and
calls it with a fresh `Daemon` instance whenever the daemon (re)starts. The
factory the runtime uses, `start_actor`, runs the daemon in a `DaemonActor`;
a test may pass one that runs nothing and drive the level by hand.

The level is the daemon's `DaemonHost`: the actor reports each finished
message to it (and takes the next one it hands back, in its own thread),
makes the daemon's requests through it, and reports a failing ``on_start``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from ._base import TierdActor

if TYPE_CHECKING:
    from collections.abc import Callable

    import pykka

    from .._outcome import Outcome
    from ..errors import TierdError
    from ..messaging.link import Router
    from ..messaging.message import Address, Message
    from .daemon import Daemon


class DaemonHost(Protocol):
    """What a daemon's executor reports to: its level."""

    @property
    def router(self) -> Router:
        """How to reach every level, for the daemon's notifications."""

    def finished(
        self,
        daemon: str,
        generation: int,
        message_id: str,
        result: Any,
        error: BaseException | None,
        duration: float,
    ) -> Message | None:
        """The daemon finished a message; returns the next one to handle at once, if any."""

    def request(
        self, daemon: str, generation: int, request: Message, waiter: Outcome[Message | TierdError]
    ) -> None:
        """The daemon asks; the reply or the error is set on ``waiter``."""

    def start_failed(self, daemon: str, generation: int, error: BaseException) -> None:
        """The daemon's ``on_start`` raised ``error``."""


class DaemonExecutor(Protocol):
    """A running daemon instance, as its level sees it."""

    def tell(self, message: Message) -> None:
        """Hand the daemon a message to handle, without waiting."""

    def stop(self) -> None:
        """Stop once the message in hand is finished; returns at once."""


ExecutorFactory: TypeAlias = "Callable[[Daemon, Address, DaemonHost, int, Any], DaemonExecutor]"
"""Starts ``(daemon, address, host, generation, log)``: see `start_actor`."""


def start_actor(
    daemon: Daemon, address: Address, host: DaemonHost, generation: int, log: Any
) -> DaemonExecutor:
    """Run ``daemon`` in a new `DaemonActor`; its ``on_start`` runs in the actor's thread.

    Args:
        daemon: a fresh instance.
        address: where it lives.
        host: its level.
        generation: bumped on every (re)start; the level ignores reports of older ones.
        log: the level's logger; the daemon's is bound to its id.
    """
    executor = _ActorExecutor()
    executor.start(DaemonActor.start(daemon, address, host, generation, log, executor))
    return executor


class _ActorExecutor:
    """A `DaemonActor`'s reference as a `DaemonExecutor`."""

    __slots__ = ("_ref", "retired", "tell")

    def __init__(self) -> None:
        self.retired = False
        """Set by `stop`: the actor handles nothing more, not even what is in its inbox."""

    def start(self, ref: pykka.ActorRef[Any]) -> None:
        self._ref = ref
        self.tell: Callable[[Message], None] = ref.tell

    def stop(self) -> None:
        # The level calls this under its lock, often from the actor's own thread
        # (it just reported a crash): the flag keeps the messages already in the
        # inbox from being handled by this instance; the level requeued them.
        self.retired = True
        self._ref.stop(block=False)


class DaemonActor(TierdActor):
    """The Pykka actor that runs one `Daemon` instance for its level.

    Its level tells it a message when it is idle; after each message it
    reports to the level, which hands it the next one at once if it has one,
    so a busy daemon goes from message to message in its own thread. When
    its handler raises, the level's supervision decides: the daemon resumes
    (it goes on with its next message), or its executor is stopped and it
    handles nothing more while the level requeues what it had prefetched.

    It is also the daemon's `DaemonContext`.
    """

    def __init__(
        self,
        daemon: Daemon,
        address: Address,
        host: DaemonHost,
        generation: int,
        log: Any,
        executor: _ActorExecutor,
    ) -> None:
        super().__init__()
        self.daemon = daemon
        self.daemon_id = address.daemon
        self.host = host
        self.generation = generation
        self.current: Message | None = None
        self._executor = executor
        daemon.address = address
        daemon._log = log.bind(daemon=address.daemon)  # noqa: SLF001 - see `Daemon.log`
        daemon._host = self  # noqa: SLF001 - the context is the daemon's one link to tierd

    # -- the daemon's context ------------------------------------------------------

    def request(self, request: Message, waiter: Outcome[Message | TierdError]) -> None:
        """Make the daemon's request through its level, which BLOCKs it."""
        self.host.request(self.daemon_id, self.generation, request, waiter)

    def submit(self, message: Message) -> Outcome[TierdError | None] | None:
        """Hand the daemon's notification to its recipient's level."""
        return self.host.router.check(message.recipient).submit(message, None)

    # -- the actor -------------------------------------------------------------------

    def on_start(self) -> None:
        """Run the daemon's ``on_start``; a raise is reported to the level as a crash."""
        try:
            self.daemon.on_start()
        except Exception as error:  # noqa: BLE001 - any crash is the daemon's, reported
            self.host.start_failed(self.daemon_id, self.generation, error)

    def on_stop(self) -> None:
        """Run the daemon's ``on_stop``; a raise is logged and otherwise ignored."""
        try:
            self.daemon.on_stop()
        except Exception:
            self.daemon.log.exception("daemon_on_stop_failed")

    def on_receive(self, message: Any) -> None:
        """Handle a message from the level, then every next one it hands back."""
        handle, finished, executor = self.daemon.handle, self.host.finished, self._executor
        while message is not None and not executor.retired:
            self.current = message
            started = time.perf_counter()
            try:
                result = handle(message)
                error = None
            except Exception as raised:  # noqa: BLE001 - the level decides what a raise means
                result, error = None, raised
            self.current = None
            message = finished(
                self.daemon_id,
                self.generation,
                message.id,
                result,
                error,
                time.perf_counter() - started,
            )
