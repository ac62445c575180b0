"""Counters the process runner keeps under its lock, and the frozen snapshot it hands out.

`tierd.metrics` turns the snapshot into the ``tierd_process*`` families at
scrape time, as it does the levels' statistics.
"""

from __future__ import annotations

import collections
import dataclasses

from ..orchestrators._stats import Histogram, HistogramSnapshot


@dataclasses.dataclass(frozen=True, slots=True)
class ProcessStatistics:
    """What the process runner has counted, at one moment."""

    kinds: tuple[str, ...]
    """Every kind the runner runs, so that each has its series from the start."""
    current: dict[tuple[str, str], int]
    """Processes pending, running and paused now, by (kind, status)."""
    finished: dict[tuple[str, str], int]
    """Processes finished since the runtime started, by (kind, final status)."""
    durations: dict[str, HistogramSnapshot]
    """Seconds from start to finish of the processes finished, by kind."""
    step_durations: dict[tuple[str, str], HistogramSnapshot]
    """Seconds of each completed step attempt, by (kind, step)."""
    step_retries: dict[tuple[str, str], int]
    """Step attempts that failed and were tried again, by (kind, step)."""
    recovered: dict[str, int]
    """Processes taken over after a crash or a stuck step, by kind."""


class ProcessCounters:
    """The mutable counters; the runner writes them under its lock."""

    def __init__(self) -> None:
        self.current: collections.Counter[tuple[str, str]] = collections.Counter()
        self.finished: collections.Counter[tuple[str, str]] = collections.Counter()
        self.durations: dict[str, Histogram] = collections.defaultdict(Histogram)
        self.step_durations: dict[tuple[str, str], Histogram] = collections.defaultdict(Histogram)
        self.step_retries: collections.Counter[tuple[str, str]] = collections.Counter()
        self.recovered: collections.Counter[str] = collections.Counter()

    def move(self, kind: str, old: str | None, new: str | None) -> None:
        """One process of ``kind`` went from ``old`` to ``new`` (None: not counted)."""
        if old is not None:
            self.current[(kind, old)] -= 1
        if new is not None:
            self.current[(kind, new)] += 1

    def snapshot(self, kinds: tuple[str, ...]) -> ProcessStatistics:
        """A frozen copy."""
        return ProcessStatistics(
            kinds=kinds,
            current={key: count for key, count in self.current.items() if count > 0},
            finished=dict(self.finished),
            durations={kind: h.snapshot() for kind, h in self.durations.items()},
            step_durations={key: h.snapshot() for key, h in self.step_durations.items()},
            step_retries=dict(self.step_retries),
            recovered=dict(self.recovered),
        )
