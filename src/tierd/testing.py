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
