"""Driving a `ProcessRunner` by hand: attempts run when the test says, on a fake clock.

Example::

    harness = Harness(tmp_path, kinds.Three)
    pid = harness.runner.submit("three", 1)
    harness.run_all()                      # every queued attempt, in order
    assert harness.runner.get(pid)["status"] == "completed"
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any

from tierd.processes._runner import ProcessRunner
from tierd.processes._sqlite import SqliteProcessStore
from tierd.testing import FakeClock

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


class ManualExecutor:
    """A `StepExecutor` that queues jobs; the test runs them in its own thread."""

    def __init__(self) -> None:
        self.jobs: collections.deque[tuple[str, Callable[[], None]]] = collections.deque()

    def submit(self, job: Callable[[], None], name: str) -> None:
        self.jobs.append((name, job))

    def submit_next(self, job: Callable[[], None], name: str) -> None:
        self.jobs.append((name, job))  # queued like any job: the test runs each when it says

    def join(self, timeout: float) -> int:
        return len(self.jobs)

    def shutdown(self) -> None:
        self.jobs.clear()

    def run_next(self) -> str:
        name, job = self.jobs.popleft()
        job()
        return name

    def run_all(self, limit: int = 10_000) -> list[str]:
        ran = []
        while self.jobs and len(ran) < limit:
            ran.append(self.run_next())
        return ran


class Harness:
    """A runner over a SQLite store in ``tmp_path``, a `ManualExecutor` and a `FakeClock`."""

    def __init__(self, tmp_path: Path, *classes: Any, **options: Any) -> None:
        self.path = tmp_path / "processes.db"
        self.clock = options.pop("clock", None) or FakeClock()
        self.executor = ManualExecutor()
        self.classes = classes
        self.options = options
        self.store = SqliteProcessStore(self.path)
        self.runner = self._runner()
        self.runner.start()

    def _runner(self) -> ProcessRunner:
        definitions = [c if not isinstance(c, type) else c.definition() for c in self.classes]
        return ProcessRunner(
            definitions, self.store, clock=self.clock, executor=self.executor, **self.options
        )

    def restart(self) -> None:
        """A new store and runner on the same file, as after a crash (queued jobs are lost)."""
        self.executor.jobs.clear()
        self.store.close()
        self.store = SqliteProcessStore(self.path)
        self.runner = self._runner()
        self.runner.start()

    def run_all(self) -> list[str]:
        return self.executor.run_all()

    def advance(self, seconds: float) -> None:
        """Move the clock and sweep, as the runtime's sweeper would."""
        self.clock.advance(seconds)
        self.runner.sweep()

    def close(self) -> None:
        self.store.close()
