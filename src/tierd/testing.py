"""Helpers for testing daemons and topologies, for tierd's tests and users' own.

Example::

    from tierd.testing import runtime_from_dict, wait_until

    with runtime_from_dict({"levels": [{"level": 1, "daemons": [
            {"id": "echo", "class": "tierd.actors.builtin:Echo"}]}]}) as rt:
        assert rt.request("echo@1", 42, timeout=5) == 42
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .config import parse_config
from .runtime import Runtime

if TYPE_CHECKING:
    from collections.abc import Callable


def wait_until(condition: Callable[[], Any], timeout: float = 5.0, interval: float = 0.005) -> Any:
    """Check ``condition`` until it returns something true, and return that.

    For conditions no event announces (a counter in a statistics snapshot).

    Raises:
        TimeoutError: it was still false after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"condition still false after {timeout:g}s")
        time.sleep(interval)


class FakeClock:
    """A `Clock` that moves only when a test says so, like trio's ``MockClock``.

    Give it to code that decides by time (a level, its deadlines, restarts,
    retries) and call `advance` instead of sleeping: a timeout test then
    takes no time and cannot flake on a loaded machine. Both readings move
    together.

    Args:
        monotonic: where the monotonic reading starts.
        wall: where the epoch reading starts.
    """

    def __init__(self, monotonic: float = 1000.0, wall: float = 1_800_000_000.0) -> None:
        self._monotonic = monotonic
        self._wall = wall

    def monotonic(self) -> float:
        """The monotonic reading, in seconds."""
        return self._monotonic

    def time(self) -> float:
        """The epoch reading, in seconds."""
        return self._wall

    def advance(self, seconds: float) -> None:
        """Move both readings ``seconds`` forward.

        Raises:
            ValueError: ``seconds`` is negative: a monotonic clock never goes back.
        """
        if seconds < 0:
            raise ValueError(f"a clock only moves forward, not by {seconds!r}s")
        self._monotonic += seconds
        self._wall += seconds


def runtime_from_dict(config: dict[str, Any], *, sweep_interval: float = 0.01) -> Runtime:
    """Make a `Runtime` from a config dict, with no network and a fast sweep.

    Unless the dict says otherwise, the runtime serves no network
    (``endpoint = ""``) and no metrics (``metrics = ""``).
    """
    config = dict(config)
    runtime_section = dict(config.get("runtime", {}))
    runtime_section.setdefault("sweep_interval", sweep_interval)
    runtime_section.setdefault("grace_period", 1.0)
    runtime_section.setdefault("endpoint", "")
    runtime_section.setdefault("metrics", "")
    config["runtime"] = runtime_section
    return Runtime(parse_config(config, "<test config>"))
