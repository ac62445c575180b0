"""Supervision: what becomes of a daemon whose handler raised.

A handler that raises fails *its message* (the level decides that, with the
retry policy). What happens to the *daemon* is a directive chosen by the
exception's type, as in Akka's supervisor strategies (`SupervisionPolicy`):

- ``resume`` (the default): the daemon keeps its instance and its state;
- ``restart``: a fresh instance after the restart backoff, counted toward
  ``max_restarts`` in ``window``, after which it is given up;
- ``stop``: given up at once.

tierd's own errors (`TierdError`: a downstream `RemoteError`, `RequestTimeout`,
`Deadlock`, ...) always resume: they are about another daemon or the network,
never about this daemon's state.

`RestartTracker` decides for one daemon, crash after crash: exponential
backoff from ``initial_delay``, and giving up after ``max_restarts`` within
``window`` seconds. `Supervisor` holds a level's policies and trackers and
the restarts that are due; the level asks it after every failure and on
every sweep, and acts on its `Resume`, `Restart` or `Stop`.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import TYPE_CHECKING, Final, Literal

from .._deadlines import DeadlineHeap
from ..errors import TierdError

if TYPE_CHECKING:
    from collections.abc import Mapping

Directive = Literal["resume", "restart", "stop"]
DIRECTIVES: Final = ("resume", "restart", "stop")


@dataclasses.dataclass(frozen=True, slots=True)
class SupervisionPolicy:
    """Which exception types restart a daemon or stop it; every other one resumes it."""

    restart: tuple[str, ...] = ()
    """Exception class names (a subclass of one matches) that restart the daemon."""
    stop: tuple[str, ...] = ()
    """Exception class names that give the daemon up at once."""

    def directive(self, error: BaseException) -> Directive:
        """The directive for ``error``: the most specific class named wins; tierd's own resume."""
        if isinstance(error, TierdError):
            return "resume"
        for cls in type(error).__mro__:
            if cls.__name__ in self.stop:
                return "stop"
            if cls.__name__ in self.restart:
                return "restart"
        return "resume"


@dataclasses.dataclass(frozen=True, slots=True)
class Resume:
    """Keep the daemon's instance: it takes its next message at once."""


@dataclasses.dataclass(frozen=True, slots=True)
class Restart:
    """Replace the daemon's instance after ``delay`` seconds."""

    delay: float


@dataclasses.dataclass(frozen=True, slots=True)
class Stop:
    """Give the daemon up: ``reason`` says why, for the log and its error."""

    reason: str


def backoff(initial_delay: float, multiplier: float, max_delay: float, step: int) -> float:
    """Seconds to wait before try ``step + 1``: exponential from ``initial_delay``, capped.

    Restarts after a crash and retries of a failed message both back off this way.
    """
    return float(min(initial_delay * multiplier**step, max_delay))


@dataclasses.dataclass(frozen=True, slots=True)
class RestartPolicy:
    """How a crashed daemon is restarted."""

    initial_delay: float = 0.1
    """Seconds before the first restart."""
    multiplier: float = 2.0
    """Each further restart waits this many times longer."""
    max_delay: float = 5.0
    """The longest wait between restarts, in seconds."""
    max_restarts: int = 5
    """Give up after this many restarts within `window`."""
    window: float = 60.0
    """Seconds over which restarts are counted."""


class RestartTracker:
    """Decides, crash after crash, when a daemon restarts or that it is given up.

    The delay grows by `multiplier` with each crash inside the window and
    starts again from `initial_delay` once the window holds no crash.
    """

    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        self._restarts: collections.deque[float] = collections.deque()
        self.total_restarts = 0
        """Restarts over the daemon's whole life, for statistics."""

    def next_delay(self, now: float) -> float | None:
        """Record a crash at monotonic ``now``; the delay before restarting, or None to give up."""
        window_start = now - self.policy.window
        while self._restarts and self._restarts[0] < window_start:
            self._restarts.popleft()
        if len(self._restarts) >= self.policy.max_restarts:
            return None
        policy = self.policy
        delay = backoff(
            policy.initial_delay, policy.multiplier, policy.max_delay, len(self._restarts)
        )
        self._restarts.append(now)
        self.total_restarts += 1
        return delay


class Supervisor:
    """The supervision decisions of one level's daemons, and the restarts that are due.

    Args:
        policies: each daemon's restart policy, by daemon id.
        directives: each daemon's supervision policy; resume-everything if missing.
    """

    def __init__(
        self,
        policies: Mapping[str, RestartPolicy],
        directives: Mapping[str, SupervisionPolicy] | None = None,
    ) -> None:
        self._trackers = {daemon: RestartTracker(policy) for daemon, policy in policies.items()}
        self._directives = dict(directives or {})
        self._due: DeadlineHeap[str] = DeadlineHeap()

    def failed(self, daemon: str, error: BaseException, now: float) -> Resume | Restart | Stop:
        """Decide what becomes of ``daemon``, whose handler raised ``error`` at ``now``."""
        directive = self._directives.get(daemon, _RESUME_ALL).directive(error)
        if directive == "resume":
            return Resume()
        if directive == "stop":
            return Stop(f"{type(error).__name__} is listed in its supervision.stop")
        return self.crashed(daemon, now)

    def crashed(self, daemon: str, now: float) -> Restart | Stop:
        """Record a crash of ``daemon`` at ``now`` that needs a fresh instance.

        Returns:
            `Restart` with the backoff, which `due` then reports; or `Stop`:
            it crashed too often and is given up.
        """
        delay = self._trackers[daemon].next_delay(now)
        if delay is None:
            policy = self._trackers[daemon].policy
            return Stop(f"it crashed more than {policy.max_restarts} times in {policy.window:g}s")
        self._due.add(now + delay, daemon)
        return Restart(delay)

    def reset(self, daemon: str) -> None:
        """Forget ``daemon``'s recent crashes (an operator restarted it); keep its total."""
        old = self._trackers[daemon]
        fresh = RestartTracker(old.policy)
        fresh.total_restarts = old.total_restarts
        self._trackers[daemon] = fresh

    def due(self, now: float) -> list[str]:
        """The daemons whose restart is due at ``now``, each reported once."""
        return list(self._due.expired(now))

    def restarts(self, daemon: str) -> int:
        """How many times ``daemon`` was restarted in all."""
        return self._trackers[daemon].total_restarts

    def policy(self, daemon: str) -> RestartPolicy:
        """The restart policy of ``daemon``."""
        return self._trackers[daemon].policy


_RESUME_ALL: Final = SupervisionPolicy()
