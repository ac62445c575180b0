"""Counting refused frames, and logging them without flooding the log.

A misbehaving client can send thousands of bad frames a second. Each one is
counted by reason (the ``tierd_rejected_frames_total{reason}`` counter reads
`Rejections.snapshot`), but a reason is logged at most once per interval,
with how many were suppressed since the last line.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable


class Rejections:
    """Frames refused, by reason; written by the I/O thread, read by any.

    Args:
        log: a structlog logger.
        interval: the fewest seconds between two log lines for one reason.
        clock: monotonic seconds; tests pass their own.
    """

    def __init__(
        self, log: Any, interval: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._log = log
        self._interval = interval
        self._clock = clock
        self._counts: dict[str, int] = {}
        self._logged_at: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def count(self, reason: str, detail: str, **context: Any) -> bool:
        """Count one refused frame; return whether it was logged.

        Args:
            reason: the counter's label, e.g. ``"oversized"``.
            detail: what was wrong, for the log line.
            **context: more key-values for the log line (never a message id as a label).
        """
        now = self._clock()
        with self._lock:
            self._counts[reason] = self._counts.get(reason, 0) + 1
            last = self._logged_at.get(reason)
            if last is not None and now - last < self._interval:
                self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
                return False
            self._logged_at[reason] = now
            suppressed = self._suppressed.pop(reason, 0)
        self._log.warning(
            "frame_rejected", reason=reason, detail=detail, suppressed=suppressed, **context
        )
        return True

    def snapshot(self) -> dict[str, int]:
        """Frames refused so far, by reason."""
        with self._lock:
            return dict(self._counts)
