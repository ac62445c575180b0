"""Where step attempts run: the `StepExecutor` seam and its thread-per-attempt implementation.

A step may block for minutes (a request to a daemon, a long computation), so
each attempt gets a thread of its own (reused once it is done); a timed-out attempt that never calls
``ctx.progress`` cannot be killed, only abandoned, and it must not hold back
another process's work. Tests give the runner an executor that runs the
attempts when the test says so (``tests/processes/manual.py``).
"""

from __future__ import annotations

import queue
import threading
import time
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable


class StepExecutor(Protocol):
    """Runs jobs (step attempts, compensations) outside the runner's lock."""

    def submit(self, job: Callable[[], None], name: str) -> None:
        """Run ``job`` soon, in another thread; ``name`` names that thread."""

    def submit_next(self, job: Callable[[], None], name: str) -> None:
        """Run ``job`` right after the job that calls this, in its thread; else as `submit`.

        For a job that hands its thread on as it ends (a batch's item starting
        the next one): no thread switch. Call it only at the end of a job.
        """

    def join(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for running jobs; return how many still run."""

    def shutdown(self) -> None:
        """Take no more jobs; idle threads end now, busy ones after their job."""


class ThreadExecutor:
    """A thread per job running at once, kept for the next job once done (a cached pool).

    An idle thread waits ``idle_timeout`` seconds for another job, then ends. A job
    never waits for a thread: if none is idle, a new one starts, so an attempt
    stuck in its step holds its own thread and no one else's. A job given
    with `submit_next` from a job runs in that job's thread once it returns.

    Args:
        idle_timeout: seconds an idle thread is kept.
    """

    def __init__(self, idle_timeout: float = 30.0) -> None:
        self.idle_timeout = idle_timeout
        self._jobs: queue.SimpleQueue[tuple[Callable[[], None], str]] = queue.SimpleQueue()
        self._state = threading.Condition(threading.Lock())
        self._idle = 0
        """Threads waiting for a job and not yet promised one."""
        self._busy = 0
        """Jobs handed over and not finished."""
        self.threads_started = 0
        """Threads started so far."""
        self._closed = False
        self._local = threading.local()
        """``next``: the jobs to run after the current one in this thread, while it runs."""

    def submit(self, job: Callable[[], None], name: str) -> None:
        """Run ``job`` in an idle thread, or in a new one if none is idle."""
        with self._state:
            if self._closed:
                raise RuntimeError("this executor is shut down")
            self._busy += 1
            spawn = self._idle == 0
            if not spawn:
                self._idle -= 1  # promised to this job
            else:
                self.threads_started += 1
        self._jobs.put((job, name))
        if spawn:
            threading.Thread(target=self._work, name=name, daemon=True).start()

    def submit_next(self, job: Callable[[], None], name: str) -> None:
        """Run ``job`` after the current job in its thread, if called from one; else `submit`."""
        following: list[tuple[Callable[[], None], str]] | None = getattr(self._local, "next", None)
        if following is None:
            self.submit(job, name)
            return
        with self._state:
            if self._closed:
                raise RuntimeError("this executor is shut down")
            self._busy += 1
        following.append((job, name))

    def _run(self, job: Callable[[], None], name: str) -> None:
        """Run ``job``, then the jobs it handed on with `submit_next`, each counted as done."""
        following: list[tuple[Callable[[], None], str]] = []
        self._local.next = following
        try:
            while True:
                threading.current_thread().name = name
                try:
                    job()
                finally:
                    if following:
                        with self._state:
                            self._busy -= 1  # the next one keeps this thread busy
                if not following:
                    return
                job, name = following.pop(0)
        finally:
            self._local.next = None

    def _work(self) -> None:
        while True:
            try:
                job, name = self._jobs.get(timeout=self.idle_timeout)
                if job is _END:
                    return
            except queue.Empty:
                with self._state:
                    if self._idle > 0:  # no job was promised to an idle thread: end one
                        self._idle -= 1
                        return
                continue  # a job is on its way to this thread
            try:
                self._run(job, name)
            finally:
                with self._state:
                    self._busy -= 1
                    self._state.notify_all()
                    closed = self._closed
                    if not closed:
                        self._idle += 1
            if closed:
                return
            threading.current_thread().name = "tierd-step-idle"

    def join(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for the running jobs; how many are left."""
        deadline = time.monotonic() + timeout
        with self._state:
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._state.wait(left)
            return self._busy

    def shutdown(self) -> None:
        """Take no more jobs; idle threads end now, busy ones after their job."""
        with self._state:
            self._closed = True
            idle, self._idle = self._idle, 0
        for _ in range(idle):
            self._jobs.put((_END, ""))


def _end() -> None:
    """The job that tells an idle thread to end."""


_END: Final = _end
