"""Where step attempts run: the `StepExecutor` seam and its thread-per-attempt implementation.

A step may block for minutes (a request to a daemon, a long computation), so
each attempt gets its own thread; a timed-out attempt that never calls
``ctx.progress`` cannot be killed, only abandoned, and it must not hold back
another process's work. Tests give the runner an executor that runs the
attempts when the test says so (``tests/processes/manual.py``).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable


class StepExecutor(Protocol):
    """Runs jobs (step attempts, compensations) outside the runner's lock."""

    def submit(self, job: Callable[[], None], name: str) -> None:
        """Run ``job`` soon, in another thread; ``name`` names that thread."""

    def join(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for running jobs; return how many still run."""


class ThreadExecutor:
    """One daemon thread per job."""

    def __init__(self) -> None:
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], None], name: str) -> None:
        """Start a daemon thread that runs ``job``."""

        def run() -> None:
            try:
                job()
            finally:
                with self._lock:
                    self._threads.discard(thread)

        thread = threading.Thread(target=run, name=name, daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def join(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for the running jobs; how many are left."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                threads = list(self._threads)
            if not threads:
                return 0
            left = deadline - time.monotonic()
            if left <= 0:
                return len(threads)
            threads[0].join(min(left, 0.05))
