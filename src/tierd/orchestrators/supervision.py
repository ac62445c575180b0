"""Restart policy: exponential backoff, and giving up after N restarts in a window."""

from __future__ import annotations

import collections
import dataclasses


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
