"""The systems users pick instead: Ray actors and Celery, measured when installed.

Install them with ``pip install -e '.[bench]'``. A peer that is missing is
reported as "not installed", never left out silently.
"""

from __future__ import annotations

import collections
import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).parent.parent


def installed(module: str) -> bool:
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


@contextmanager
def redis_server() -> Iterator[str]:
    """A redis-server on a free loopback port, stopped by its PID afterwards."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(10)


def celery_concurrent(total: int, concurrency: int = 16) -> float:
    """Celery with a Redis broker: round trips per second with ``concurrency`` tasks in flight."""
    with redis_server() as url:
        env = {**os.environ, "TIERD_BENCH_REDIS": url}
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "benchmarks.celery_app", "worker",
             "--pool", "threads", "--concurrency", "4", "--loglevel", "ERROR"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            os.environ["TIERD_BENCH_REDIS"] = url
            from . import celery_app

            celery_app.app.conf.broker_url = url
            celery_app.app.conf.result_backend = url
            celery_app.echo.delay(None).get(timeout=60)  # the worker is up
            payload = {"payload": b"x" * 64}
            in_flight = collections.deque(
                celery_app.echo.delay(payload) for _ in range(concurrency)
            )
            sent, started = concurrency, time.perf_counter()
            for _ in range(total):
                in_flight.popleft().get(timeout=60)
                if sent < total:
                    in_flight.append(celery_app.echo.delay(payload))
                    sent += 1
            return total / (time.perf_counter() - started)
        finally:
            worker.terminate()
            worker.wait(30)


def measure(total: int) -> dict[str, str | float]:
    """Each peer's cross-process W3 figure (round trips per second), or why there is none."""
    figures: dict[str, str | float] = {}
    if installed("ray"):
        figures["Ray actors W3 (rt/s)"] = ray_concurrent(total)
    else:
        figures["Ray actors W3 (rt/s)"] = "not installed (pip install -e '.[bench]')"
    if not installed("celery"):
        figures["Celery + Redis W3 (rt/s)"] = "not installed (pip install -e '.[bench]')"
    elif shutil.which("redis-server") is None:
        figures["Celery + Redis W3 (rt/s)"] = (
            "not installed: redis-server (apt-get install redis-server)"
        )
    else:
        figures["Celery + Redis W3 (rt/s)"] = celery_concurrent(total)
    return figures
