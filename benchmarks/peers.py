"""The systems users pick instead: Ray actors and Celery, measured when installed.

Install them with ``pip install -e '.[bench]'``. A peer that is missing is
reported as "not installed", never left out silently.
"""

from __future__ import annotations

import importlib.util
import time
from typing import Any


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def ray_concurrent(total: int, concurrency: int = 16, targets: int = 4) -> float:
    """Ray actors: round trips per second with ``concurrency`` calls in flight over ``targets``."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:

        @ray.remote
        class Echo:
            def echo(self, payload: Any) -> Any:
                return payload

        actors = [Echo.remote() for _ in range(targets)]  # type: ignore[attr-defined]
        ray.get([actor.echo.remote(None) for actor in actors])
        payload = {"payload": b"x" * 64}
        in_flight = [actors[n % targets].echo.remote(payload) for n in range(concurrency)]
        sent = concurrency
        done = 0
        started = time.perf_counter()
        while done < total:
            _ready, in_flight = ray.wait(in_flight, num_returns=1)
            done += 1
            if sent < total:
                in_flight.append(actors[sent % targets].echo.remote(payload))
                sent += 1
        return total / (time.perf_counter() - started)
    finally:
        ray.shutdown()


def measure(total: int) -> dict[str, str | float]:
    """Each peer's cross-process W3 figure (round trips per second), or why there is none."""
    figures: dict[str, str | float] = {}
    if _installed("ray"):
        figures["Ray actors W3 (rt/s)"] = ray_concurrent(total)
    else:
        figures["Ray actors W3 (rt/s)"] = "not installed (pip install -e '.[bench]')"
    figures["Celery + Redis W3 (rt/s)"] = (
        "not measured yet" if _installed("celery") else "not installed (pip install -e '.[bench]')"
    )
    return figures
