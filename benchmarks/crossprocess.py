"""Cross-process workloads: `tierd.Client` against `tierd run`, and raw pyzmq DEALER/ROUTER.

Both servers run in a child process on 127.0.0.1; the clients run here. The
shapes are the same for both: W1 sends notifications until the server has
counted the last one, W2 does round trips one at a time, W3 keeps 16 requests
in flight from 16 client threads (one client socket each) over 4 daemons.
"W1 durable" is W1 to a recorder on a durable level of the same runtime
(each send returns once the message is in the level's SQLite journal),
compared with W1 to the recorder of the level that is not durable.

Issue 16 adds: W1 with `Client.send_many` (every message confirmed, in
batches) against the raw DEALER that waits for nothing, and to the durable
level against the same to the level that is not; W2 against the bare
two-thread server (`benchmarks.two_thread_server`, the floor of tierd's
design: I/O thread, hand-off, worker replying itself); `AsyncClient` with 16
requests in flight on one connection against 16 synchronous clients; and a
daemon of ``instances = 4`` whose handler sleeps 2 ms, 16 in flight, against
``instances = 1``.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack
import zmq

import tierd

from .measure import median, percentile

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ROOT = Path(__file__).parent.parent
PAYLOAD = b"x" * 64
CONCURRENCY = 16
TARGETS = 4


def _free_endpoint() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{probe.getsockname()[1]}"


TOPOLOGY = """
[runtime]
name = "bench"
endpoint = "{endpoint}"
metrics = ""
log_level = "warning"
data_dir = "{data_dir}"

[[levels]]
level = 1
queue_limit = 2000000
{daemons}
[[levels]]
level = 2
queue_limit = 2000000
durable = true
  [[levels.daemons]]
  id = "recorder"
  class = "tierd.actors.builtin:Recorder"
"""
POOLS = """
  [[levels.daemons]]
  id = "pool1"
  class = "tierd.actors.builtin:Sleeper"
  [[levels.daemons]]
  id = "pool4"
  class = "tierd.actors.builtin:Sleeper"
  instances = 4
"""
SLEEP = {"seconds": 0.002}


@contextmanager
def tierd_server() -> Iterator[str]:
    """`tierd run`: 4 echoes and a recorder on level 1, a recorder on durable level 2."""
    endpoint = _free_endpoint()
    daemons = "".join(
        f'  [[levels.daemons]]\n  id = "echo{n}"\n  class = "tierd.actors.builtin:Echo"\n'
        for n in range(TARGETS)
    )
    daemons += (
        '  [[levels.daemons]]\n  id = "recorder"\n  class = "tierd.actors.builtin:Recorder"\n'
    ) + POOLS
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "bench.toml"
        config.write_text(
            TOPOLOGY.format(endpoint=endpoint, daemons=daemons, data_dir=Path(folder) / "data")
        )
        child = subprocess.Popen(
            [sys.executable, "-m", "tierd.cli", "run", str(config)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for_tierd(endpoint)
            yield endpoint
        finally:
            child.terminate()
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _wait_for_tierd(endpoint: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    with tierd.Client(endpoint) as client:
        while time.monotonic() < deadline:
            try:
                client.request("echo0@1", None, timeout=0.5)
                return
            except tierd.RequestTimeout:
                continue
    raise TimeoutError(f"tierd at {endpoint} did not answer")


@contextmanager
def raw_server(module: str = "benchmarks.raw_zmq_server") -> Iterator[str]:
    """A raw pyzmq ROUTER server (``module``) in a child process; yields its endpoint."""
    endpoint = _free_endpoint()
    child = subprocess.Popen(
        [sys.executable, "-m", module, endpoint],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError("raw pyzmq server did not start")
        yield endpoint
    finally:
        child.kill()
        child.wait()


class RawClient:
    """A DEALER speaking the raw server's msgpack protocol; one thread at a time."""

    def __init__(self, context: zmq.Context[Any], endpoint: str) -> None:
        self.socket = context.socket(zmq.DEALER)
        self.socket.linger = 0
        self.socket.connect(endpoint)

    def request(self, payload: Any) -> Any:
        self.socket.send(msgpack.packb({"op": "request", "payload": payload}))
        return msgpack.unpackb(self.socket.recv())["reply"]

    def notify(self, payload: Any) -> None:
        self.socket.send(msgpack.packb({"op": "notify", "payload": payload}))

    def count(self) -> int:
        self.socket.send(msgpack.packb({"op": "count"}))
        return int(msgpack.unpackb(self.socket.recv())["count"])

    def close(self) -> None:
        self.socket.close()


def _concurrently(work: Callable[[int], list[float]]) -> tuple[float, list[float]]:
    """Run ``work(thread_number)`` on CONCURRENCY threads; rate and every latency."""
    results: list[list[float]] = [[] for _ in range(CONCURRENCY)]
    threads = [
        threading.Thread(target=lambda n=n: results.__setitem__(n, work(n)))
        for n in range(CONCURRENCY)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    latencies = [lat for per_thread in results for lat in per_thread]
    return len(latencies) / seconds, latencies


def _timed_loop(call: Callable[[], Any], n: int) -> list[float]:
    latencies = []
    for _ in range(n):
        sent = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - sent)
    return latencies


# -- tierd ---------------------------------------------------------------------


def tierd_round_trips(endpoint: str, total: int, concurrency: int) -> tuple[float, list[float]]:
    def work(number: int) -> list[float]:
        with tierd.Client(endpoint) as client:
            target = f"echo{number % TARGETS}@1"
            return _timed_loop(
                lambda: client.request(target, PAYLOAD, timeout=60), total // concurrency
            )

    if concurrency == 1:
        started = time.perf_counter()
        latencies = work(0)
        return len(latencies) / (time.perf_counter() - started), latencies
    return _concurrently(work)


def tierd_one_way(endpoint: str, n: int, target: str = "recorder@1") -> float:
    with tierd.Client(endpoint) as client:
        before = client.request(target, {"op": "count"}, timeout=60)
        started = time.perf_counter()
        for i in range(n):
            client.send(target, {"id": i, "payload": PAYLOAD})
        while client.request(target, {"op": "count"}, timeout=60) < before + n:
            pass
        return n / (time.perf_counter() - started)


def tierd_send_many(endpoint: str, n: int, target: str = "recorder@1") -> float:
    """W1 with `Client.send_many`: every message confirmed, until the recorder counted them."""
    with tierd.Client(endpoint) as client:
        before = client.request(target, {"op": "count"}, timeout=60)
        started = time.perf_counter()
        client.send_many((target, {"id": i, "payload": PAYLOAD}) for i in range(n))
        while client.request(target, {"op": "count"}, timeout=60) < before + n:
            pass
        return n / (time.perf_counter() - started)


def tierd_async_round_trips(
    endpoint: str, total: int, concurrency: int, payload: Any = PAYLOAD, target: str = ""
) -> float:
    """``concurrency`` tasks on one `AsyncClient`, each doing round trips one at a time."""

    async def main() -> float:
        async with tierd.AsyncClient(endpoint) as client:

            async def work(number: int) -> None:
                to = target or f"echo{number % TARGETS}@1"
                for _ in range(total // concurrency):
                    await client.request(to, payload, timeout=60)

            started = time.perf_counter()
            await asyncio.gather(*(work(n) for n in range(concurrency)))
            return (total // concurrency) * concurrency / (time.perf_counter() - started)

    return asyncio.run(main())


# -- raw pyzmq ---------------------------------------------------------------------


def raw_round_trips(endpoint: str, total: int, concurrency: int) -> tuple[float, list[float]]:
    context: zmq.Context[Any] = zmq.Context()
    try:

        def work(_number: int) -> list[float]:
            client = RawClient(context, endpoint)
            try:
                return _timed_loop(lambda: client.request(PAYLOAD), total // concurrency)
            finally:
                client.close()

        if concurrency == 1:
            started = time.perf_counter()
            latencies = work(0)
            return len(latencies) / (time.perf_counter() - started), latencies
        return _concurrently(work)
    finally:
        context.term()


def raw_one_way(endpoint: str, n: int) -> float:
    context: zmq.Context[Any] = zmq.Context()
    client = RawClient(context, endpoint)
    try:
        before = client.count()
        started = time.perf_counter()
        for i in range(n):
            client.notify({"id": i, "payload": PAYLOAD})
        while client.count() < before + n:
            pass
        return n / (time.perf_counter() - started)
    finally:
        client.close()
        context.term()


def rows(round_trips: int, concurrent: int, one_way: int, repeat: int) -> list[dict[str, Any]]:
    """Cross-process W1, W2 and W3 for tierd and raw pyzmq, each the median of ``repeat`` runs."""
    measured: dict[str, tuple[list[Any], list[Any]]] = {}
    pooled = max(concurrent // 20, 64)
    with (
        tierd_server() as tierd_endpoint,
        raw_server() as raw_endpoint,
        raw_server("benchmarks.two_thread_server") as floor_endpoint,
    ):
        plans: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
            ("cross-process W1", lambda: tierd_one_way(tierd_endpoint, one_way // 4),
             lambda: raw_one_way(raw_endpoint, one_way // 4)),
            ("cross-process W1 send_many", lambda: tierd_send_many(tierd_endpoint, one_way),
             lambda: raw_one_way(raw_endpoint, one_way)),
            ("cross-process W1 send_many durable",
             lambda: tierd_send_many(tierd_endpoint, one_way, "recorder@2"),
             lambda: tierd_send_many(tierd_endpoint, one_way, "recorder@1")),
            ("cross-process W2", lambda: tierd_round_trips(tierd_endpoint, round_trips, 1),
             lambda: raw_round_trips(raw_endpoint, round_trips, 1)),
            ("cross-process W2 vs two-thread floor",
             lambda: tierd_round_trips(tierd_endpoint, round_trips, 1),
             lambda: raw_round_trips(floor_endpoint, round_trips, 1)),
            ("cross-process W3", lambda: tierd_round_trips(tierd_endpoint, concurrent, CONCURRENCY),
             lambda: raw_round_trips(raw_endpoint, concurrent, CONCURRENCY)),
            ("AsyncClient, 16 in flight",
             lambda: tierd_async_round_trips(tierd_endpoint, concurrent, CONCURRENCY),
             lambda: tierd_round_trips(tierd_endpoint, concurrent, CONCURRENCY)),
            ("pool of 4, 2 ms handler, 16 in flight",
             lambda: tierd_async_round_trips(
                 tierd_endpoint, pooled, CONCURRENCY, SLEEP, "pool4@1"),
             lambda: tierd_async_round_trips(
                 tierd_endpoint, pooled // 4, CONCURRENCY, SLEEP, "pool1@1")),
            ("cross-process W1 durable",
             lambda: tierd_one_way(tierd_endpoint, one_way // 4, "recorder@2"),
             lambda: tierd_one_way(tierd_endpoint, one_way // 4, "recorder@1")),
        ]  # fmt: skip
        for name, tierd_run, raw_run in plans:
            runs: tuple[list[Any], list[Any]] = ([], [])
            for _ in range(repeat):
                runs[0].append(tierd_run())
                runs[1].append(raw_run())
            measured[name] = runs
    return [_row(name, *runs) for name, runs in measured.items()]


BASELINES = {
    "cross-process W1 send_many": "raw pyzmq DEALER, no acks",
    "cross-process W1 send_many durable": "tierd send_many, level not durable",
    "cross-process W1 durable": "tierd W1, level not durable",
    "cross-process W2 vs two-thread floor": "bare two-thread pyzmq server",
    "AsyncClient, 16 in flight": "16 synchronous tierd.Clients",
    "pool of 4, 2 ms handler, 16 in flight": "the same daemon, instances = 1",
}


def _row(name: str, tierd_runs: list[Any], raw_runs: list[Any]) -> dict[str, Any]:
    from .bench import TARGETS

    def rate(run: Any) -> float:
        return float(run[0] if isinstance(run, tuple) else run)

    tierd_value = median([rate(r) for r in tierd_runs])
    raw_value = median([rate(r) for r in raw_runs])
    baseline = BASELINES.get(name, "raw pyzmq DEALER/ROUTER + msgpack")
    row: dict[str, Any] = {
        "workload": name,
        "baseline": baseline,
        "unit": "msg/s" if "W1" in name else "rt/s",
        "tierd": tierd_value,
        "baseline_value": raw_value,
        "ratio": tierd_value / raw_value,
        "target": TARGETS.get(name),
        "runs": {"tierd": [rate(r) for r in tierd_runs], "baseline": [rate(r) for r in raw_runs]},
    }
    if isinstance(tierd_runs[-1], tuple):
        for key, run in (("tierd_latency", tierd_runs[-1]), ("baseline_latency", raw_runs[-1])):
            row[key] = {
                "p50_us": percentile(run[1], 0.5) * 1e6,
                "p99_us": percentile(run[1], 0.99) * 1e6,
            }
    return row
