"""`DaemonSlot`: everything a level knows about one of its daemons."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Final

from .._clock import SYSTEM_CLOCK
from ..actors.states import DaemonState, check_transition
from ._retries import DEFAULT_POISON_AFTER
from ._stats import DaemonStatistics, Histogram
from ._supervision import RestartPolicy, SupervisionPolicy

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._clock import Clock
    from ..actors._executor import DaemonExecutor
    from ..actors.daemon import Daemon
    from ..messaging.events import EventFanOut
    from ..messaging.message import Address
    from ._queue import QueueEntry
    from ._retries import RetryPolicy


_ERROR: Final = DaemonState.ERROR


@dataclasses.dataclass(frozen=True, slots=True)
class DaemonSpec:
    """How to make one daemon: what the config says about it."""

    id: str
    """The daemon's id, unique within its level."""
    factory: Callable[[], Daemon]
    """Makes a fresh instance, options applied; called again on every restart."""
    class_path: str = ""
    """``module:Class``, for status and logs."""
    prefetch: int = 1
    """How many messages each instance may hold at once; 1 means only when IDLE."""
    instances: int = 1
    """How many copies run behind its one address; a message goes to any that can take it."""
    restart: RestartPolicy = dataclasses.field(default_factory=RestartPolicy)
    """How it is restarted after a crash."""
    supervision: SupervisionPolicy = dataclasses.field(default_factory=SupervisionPolicy)
    """Which exceptions restart or stop it; the others resume it."""
    retry: RetryPolicy | None = None
    """How a message whose handler raised is delivered again; None: never."""
    poison_after: int = DEFAULT_POISON_AFTER
    """Deliveries without completion after which a message is dead-lettered as poison."""


class DaemonSlot:
    """One instance of a daemon of a level: its state, its actor and what it holds.

    A daemon with ``instances = N`` has N slots, which share its address and
    its queue lane and have each their own state, restart history and counters.
    """

    def __init__(
        self,
        spec: DaemonSpec,
        address: Address,
        index: int = 0,
        *,
        events: EventFanOut | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.spec = spec
        self.address = address
        self.index = index
        """Which instance of its daemon it is, from 0."""
        self.key = spec.id if spec.instances == 1 else f"{spec.id}#{index}"
        """Its name in the level, status and metrics: the daemon's id, or ``id#index``
        in a pool (bounded by ``instances``, so fit for a metric label)."""
        self.state = DaemonState.IDLE
        self.executor: DaemonExecutor | None = None
        """What runs the daemon's current instance; None while it is not running."""
        self.generation = 0
        """Bumped on every (re)start; reports from an older actor are stale."""
        self.in_flight: dict[str, QueueEntry] = {}
        self.paused = False
        self.given_up = False
        self.given_up_reason = ""
        """Why it was given up, for its error and the status."""
        self.restart_requested = False
        """An operator asked for a fresh instance: it is made once the message in hand is done."""
        self.processed = 0
        self.errors = 0
        self.handle_duration = Histogram()
        self._events = events
        self._time = clock.time
        self.topic = f"daemon.{address.level}.{self.key}"
        """The topic of its ``daemon_state`` events."""

    def set_state(self, new: DaemonState) -> None:
        """Move to ``new``; raises `IllegalTransition` if the table forbids it.

        A move into or out of ERROR is announced (`announce`); the moves of
        every message (IDLE, WORKING, BLOCKED) are not: they are the hot path,
        and ``tierd status`` shows them.
        """
        previous = self.state
        check_transition(previous, new)
        self.state = new
        if new is _ERROR or previous is _ERROR:  # two identity checks on the hot path
            self.announce("error" if new is _ERROR else "recovered", previous)

    def announce(self, change: str, previous: DaemonState | None = None) -> None:
        """Publish a ``daemon_state`` event, if anyone follows the runtime's events.

        Args:
            change: what happened: ``error``, ``recovered``, ``paused``,
                ``resumed``, ``given_up``, ``restarted``.
            previous: the state before, if it changed.
        """
        events = self._events
        if events is None or not events.active:
            return
        topic = self.topic
        events.publish(
            topic,
            {
                "type": "daemon_state", "topic": topic, "at": self._time(),
                "level": self.address.level, "daemon": self.key, "change": change,
                "state": self.state.name, "previous": (previous or self.state).name,
                "paused": self.paused, "given_up": self.given_up,
            },
        )  # fmt: skip

    def can_take(self) -> bool:
        """Whether a message may be handed over now."""
        if self.paused or self.given_up:
            return False
        if self.state is DaemonState.IDLE:
            return True
        return self.state is DaemonState.WORKING and len(self.in_flight) < self.spec.prefetch

    def statistics(self, queued: int, restarts: int) -> DaemonStatistics:
        """A snapshot of the daemon; ``queued`` and ``restarts`` come from the level."""
        return DaemonStatistics(
            daemon=self.key,
            daemon_class=self.spec.class_path,
            state=self.state.name,
            paused=self.paused,
            given_up=self.given_up,
            queued=queued,
            in_flight=len(self.in_flight),
            processed=self.processed,
            errors=self.errors,
            restarts=restarts,
            handle_duration=self.handle_duration.snapshot(),
        )
