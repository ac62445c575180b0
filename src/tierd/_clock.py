"""`Clock`: where code that decides by time reads it, so that tests can move it.

A level, its deadlines, its supervision and its retries read both clocks
through one `Clock`: monotonic seconds for every deadline, epoch seconds for
what a message says about itself (``created_at``). `SystemClock` is the real
one; `tierd.testing.FakeClock` moves only when a test advances it.
"""

from __future__ import annotations

import time
from typing import Final, Protocol


class Clock(Protocol):
    """Two readings of the current time, in float seconds."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for deadlines and durations."""

    def time(self) -> float:
        """Seconds since the epoch, for timestamps such as ``Message.created_at``."""


class SystemClock:
    """The real clocks of the machine."""

    __slots__ = ()

    monotonic = staticmethod(time.monotonic)
    time = staticmethod(time.time)


SYSTEM_CLOCK: Final = SystemClock()
"""The clock every component uses unless it is given another."""
