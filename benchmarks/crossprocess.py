"""Cross-process workloads: `tierd.Client` against `tierd run`, and raw pyzmq."""

from __future__ import annotations

from typing import Any


def rows(round_trips: int, concurrent: int, one_way: int, repeat: int) -> list[dict[str, Any]]:
    """No cross-process rows until the ZeroMQ bridge lands."""
    return []
