"""In-process workloads: a daemon sends to a daemon through its level, against raw Pykka.

Every tierd figure goes through the whole of tierd: a Driver daemon calls
``notify``/``request``, the level queues by priority and hands over to the
receiving daemon, replies are correlated, counters are kept. Raw Pykka does the
same shape with bare ``tell``/``ask`` between ``ThreadingActor``s.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pykka

from tierd.testing import runtime_from_dict

from . import drivers

TIMEOUT = 300.0


def _driver_topology(extra_daemons: list[dict[str, Any]], drivers_count: int = 1) -> Any:
    daemons = [
        {"id": f"driver{n}", "class": "benchmarks.drivers:Driver"} for n in range(drivers_count)
    ]
    return runtime_from_dict(
        {"levels": [{"level": 1, "daemons": daemons + extra_daemons}]}, sweep_interval=0.1
    )


def _run_drivers(runtime: Any, jobs: list[dict[str, Any]]) -> float:
    """Start every Driver's job at once; return the seconds until the last one finished."""
    for job in jobs:
        drivers.FINISH_LINES[job["name"]] = threading.Event()
    started = time.perf_counter()
    for number, job in enumerate(jobs):
        runtime.send(f"driver{number}@1", job)
    for job in jobs:
        if not drivers.FINISH_LINES[job["name"]].wait(TIMEOUT):
            raise TimeoutError(f"{job['name']} did not finish")
    return time.perf_counter() - started


# -- W1 / W5: one-way ------------------------------------------------------------


def tierd_one_way(n: int, size: int = 64) -> float:
    """Notifications per second from a Driver daemon to a Sink daemon, until the last is handled."""
    sink = {
        "id": "sink",
        "class": "benchmarks.drivers:Sink",
        "options": {"name": "w1", "expected": n},
    }
    runtime = _driver_topology([sink])
    runtime.start()
    try:
        drivers.FINISH_LINES["w1"] = threading.Event()
        job = {"name": "w1-driver", "op": "notify", "to": "sink@1", "n": n, "size": size}
        drivers.FINISH_LINES["w1-driver"] = threading.Event()
        started = time.perf_counter()
        runtime.send("driver0@1", job)
        if not drivers.FINISH_LINES["w1"].wait(TIMEOUT):
            raise TimeoutError("sink did not see every notification")
        return n / (time.perf_counter() - started)
    finally:
        runtime.stop(grace_period=0)


class _RawSink(pykka.ThreadingActor):
    def __init__(self, expected: int, done: threading.Event) -> None:
        super().__init__()
        self.expected, self.done, self.count = expected, done, 0

    def on_receive(self, message: Any) -> None:
        self.count += 1
        if self.count == self.expected:
            self.done.set()


def pykka_one_way(n: int, size: int = 64) -> float:
    """Raw Pykka: tells per second from one thread to one actor, until the last is handled."""
    done = threading.Event()
    sink = _RawSink.start(n, done)
    payload = b"x" * size
    try:
        started = time.perf_counter()
        for i in range(n):
            sink.tell({"id": i, "payload": payload})
        if not done.wait(TIMEOUT):
            raise TimeoutError("raw sink did not finish")
        return n / (time.perf_counter() - started)
    finally:
        sink.stop()


# -- W2 / W3: request/reply ---------------------------------------------------------


def tierd_request_reply(total: int, concurrency: int, targets: int) -> tuple[float, list[float]]:
    """Round trips per second: ``concurrency`` Driver daemons, each with one request outstanding."""
    echoes = [{"id": f"echo{n}", "class": "tierd.actors.builtin:Echo"} for n in range(targets)]
    runtime = _driver_topology(echoes, drivers_count=concurrency)
    runtime.start()
    try:
        jobs = [
            {
                "name": f"rr{d}",
                "op": "request",
                "to": f"echo{d % targets}@1",
                "n": total // concurrency,
            }
            for d in range(concurrency)
        ]
        seconds = _run_drivers(runtime, jobs)
        latencies = [lat for job in jobs for lat in drivers.RESULTS[job["name"]]]
        return len(latencies) / seconds, latencies
    finally:
        runtime.stop(grace_period=0)


class _RawEcho(pykka.ThreadingActor):
    def on_receive(self, message: Any) -> Any:
        return message


class _RawDriver(pykka.ThreadingActor):
    def __init__(
        self, target: pykka.ActorRef[Any], n: int, latencies: list[float], done: threading.Event
    ) -> None:
        super().__init__()
        self.target, self.n, self.latencies, self.done = target, n, latencies, done

    def on_receive(self, message: Any) -> None:
        payload = b"x" * 64
        for i in range(self.n):
            sent = time.perf_counter()
            self.target.ask({"id": i, "payload": payload})
            self.latencies.append(time.perf_counter() - sent)
        self.done.set()


def pykka_request_reply(total: int, concurrency: int, targets: int) -> tuple[float, list[float]]:
    """Raw Pykka: ``concurrency`` driver actors each ``ask`` an echo actor, one at a time."""
    echoes = [_RawEcho.start() for _ in range(targets)]
    dones = [threading.Event() for _ in range(concurrency)]
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    refs = [
        _RawDriver.start(echoes[d % targets], total // concurrency, latencies[d], dones[d])
        for d in range(concurrency)
    ]
    try:
        started = time.perf_counter()
        for ref in refs:
            ref.tell("go")
        for done in dones:
            if not done.wait(TIMEOUT):
                raise TimeoutError("raw driver did not finish")
        seconds = time.perf_counter() - started
        flat = [lat for per_driver in latencies for lat in per_driver]
        return len(flat) / seconds, flat
    finally:
        for ref in refs + echoes:
            ref.stop()
