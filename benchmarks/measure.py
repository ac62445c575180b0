"""Timing helpers shared by the workloads."""

from __future__ import annotations

import dataclasses
import statistics
from typing import Any


@dataclasses.dataclass
class Figure:
    """One measured figure of one system on one workload."""

    value: float | None
    """The median over the repetitions; None when the system is not available."""
    unit: str
    """e.g. ``msg/s`` or ``µs``."""
    higher_is_better: bool = True
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Further figures, e.g. latency percentiles."""
    note: str = ""
    """Why there is no value, or how it was taken."""


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
