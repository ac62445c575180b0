"""Supervision: when a crashed daemon is restarted, and when it is given up.

`RestartTracker` decides for one daemon, crash after crash: exponential
backoff from ``initial_delay``, and giving up after ``max_restarts`` within
``window`` seconds. `Supervisor` holds a level's trackers and the restarts
that are due; the level asks it after a crash and on every sweep, and acts.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import TYPE_CHECKING

from .._deadlines import DeadlineHeap

if TYPE_CHECKING:
    from collections.abc import Mapping


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
    """The restart decisions of one level's daemons, and the restarts that are due.

    Args:
        policies: each daemon's restart policy, by daemon id.
    """

    def __init__(self, policies: Mapping[str, RestartPolicy]) -> None:
        self._trackers = {daemon: RestartTracker(policy) for daemon, policy in policies.items()}
        self._due: DeadlineHeap[str] = DeadlineHeap()

    def crashed(self, daemon: str, now: float) -> float | None:
        """Record a crash of ``daemon`` at monotonic ``now``.

        Returns:
            The seconds until its restart, which `due` then reports; or None:
            it crashed too often and is given up.
        """
        delay = self._trackers[daemon].next_delay(now)
        if delay is not None:
            self._due.add(now + delay, daemon)
        return delay

    def due(self, now: float) -> list[str]:
        """The daemons whose restart is due at ``now``, each reported once."""
        return list(self._due.expired(now))

    def restarts(self, daemon: str) -> int:
        """How many times ``daemon`` was restarted in all."""
        return self._trackers[daemon].total_restarts

    def policy(self, daemon: str) -> RestartPolicy:
        """The restart policy of ``daemon``."""
        return self._trackers[daemon].policy
