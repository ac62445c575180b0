"""Processes: throughput against Celery chains, ``get`` latency, ``list`` over a big store, RSS.

- P1: N three-step processes (trivial steps), ``max_concurrent`` 64, SQLite
  store, submitted from one thread and waited for: processes per second, first
  submit to last completion. Celery: N chains of three tasks on Redis, the same
  number in flight (``--pool threads``, 4 workers), in the same run.
- P2: ``Client.processes.get`` of a running process over ZeroMQ: p50/p99.
- P3: ``list`` first page (no filter, and by status) over a store holding M
  finished processes, rows written straight into the store's tables.
- P4: RSS of a runtime that starts over M pending processes (written
  straight into the store), against the same runtime over an empty store.
- P5: one batch of B trivial items (``batch_size`` 1,000, ``max_concurrent``
  64, SQLite store): items per second, submit to completion, against B plain
  tierd notifications (in-process W1) in the same run.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import msgpack

import tierd
from tierd.config import parse_config
from tierd.processes._record import new_process_id
from tierd.processes._sqlite import SqliteProcessStore

from . import inprocess
from .measure import percentile

ROOT = Path(__file__).resolve().parent.parent
GATE = threading.Event()
"""Held closed by P2 and P4, so that their one running process stays running."""


class Trivial(tierd.Process):
    """Three steps that do nothing."""

    max_concurrent = 64

    @tierd.step
    def one(self, ctx: tierd.StepContext, data: Any) -> Any:
        return data

    @tierd.step
    def two(self, ctx: tierd.StepContext, data: Any) -> Any:
        return data

    @tierd.step
    def three(self, ctx: tierd.StepContext, data: Any) -> Any:
        return data


class TrivialItems(tierd.Batch):
    """``range(params)`` items that do nothing."""

    batch_size = 1000
    max_concurrent = 64

    def items(self, ctx: tierd.StepContext, params: Any) -> Any:
        return range(params)

    def process_item(self, ctx: tierd.StepContext, item: Any) -> Any:
        return item


class Held(tierd.Process):
    """One step that waits on `GATE`, reporting progress."""

    max_concurrent = 1

    @tierd.step
    def hold(self, ctx: tierd.StepContext, data: Any) -> Any:
        while not GATE.wait(0.05):
            ctx.heartbeat()
        return data


def _config(data_dir: str, endpoint: str = "") -> dict[str, Any]:
    return {
        "runtime": {"endpoint": endpoint, "metrics": "", "data_dir": data_dir,
                    "log_level": "warning", "sweep_interval": 0.05},
        "levels": [{"level": 1, "daemons": [{"id": "echo", "class": "tierd.actors.builtin:Echo"}]}],
        "processes": {"kinds": [
            {"kind": "trivial", "class": "benchmarks.processes:Trivial"},
            {"kind": "held", "class": "benchmarks.processes:Held"},
            {"kind": "items", "class": "benchmarks.processes:TrivialItems"},
        ]},
    }  # fmt: skip


def tierd_throughput(total: int) -> float:
    """P1: processes per second, submit to the last completion."""
    with tempfile.TemporaryDirectory() as data, tierd.Runtime(parse_config(_config(data))) as rt:
        started = time.perf_counter()
        ids = [rt.processes.submit("trivial", i) for i in range(total)]
        for pid in ids:
            rt.processes.wait(pid, timeout=600)
        return total / (time.perf_counter() - started)


def batch_items(total: int) -> float:
    """P5: items per second of one batch, submit to completion."""
    with tempfile.TemporaryDirectory() as data, tierd.Runtime(parse_config(_config(data))) as rt:
        started = time.perf_counter()
        pid = rt.processes.submit("items", total)
        final = rt.processes.wait(pid, timeout=600)
        seconds = time.perf_counter() - started
        if final["completed_items"] != total:
            raise RuntimeError(f"the batch completed {final['completed_items']} of {total} items")
        return total / seconds


def celery_chains(total: int, concurrency: int = 64) -> float | str:
    """P1's baseline: Celery chains of three echo tasks on Redis, ``concurrency`` in flight."""
    from . import peers

    if not peers.installed("celery"):
        return "not installed (pip install -e '.[bench]')"
    import shutil

    if shutil.which("redis-server") is None:
        return "not installed: redis-server (apt-get install redis-server)"
    from celery import Celery, chain

    with peers.redis_server() as url:
        # An app of its own: one made earlier in this process keeps its pools to an old Redis.
        app = Celery("tierd_bench_chains", broker=url, backend=url)
        app.conf.update(
            task_serializer="msgpack", result_serializer="msgpack", accept_content=["msgpack"]
        )
        echo = app.signature("echo")
        env = {**os.environ, "TIERD_BENCH_REDIS": url}
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "benchmarks.celery_app", "worker",
             "--pool", "threads", "--concurrency", "4", "--loglevel", "ERROR"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            app.signature("echo", args=(None,)).apply_async().get(timeout=60)  # the worker is up

            def one(i: int) -> Any:
                return chain(echo.clone(args=(i,)), echo.clone(), echo.clone()).apply_async()

            in_flight = collections.deque(one(i) for i in range(min(concurrency, total)))
            sent, started = len(in_flight), time.perf_counter()
            for _ in range(total):
                in_flight.popleft().get(timeout=120)
                if sent < total:
                    in_flight.append(one(sent))
                    sent += 1
            return total / (time.perf_counter() - started)
        finally:
            app.close()
            worker.terminate()
            worker.wait(30)


def get_latency(calls: int) -> dict[str, float]:
    """P2: Client.processes.get of a running process over loopback ZeroMQ."""
    from tests.network import endpoint  # a free port

    address = endpoint()
    GATE.clear()
    with tempfile.TemporaryDirectory() as data:
        rt = tierd.Runtime(parse_config(_config(data, address)))
        rt.start()
        try:
            pid = rt.processes.submit("held")
            with tierd.Client(address) as client:
                for _ in range(min(calls, 200)):  # warm up
                    client.processes.get(pid)
                times = []
                for _ in range(calls):
                    start = time.perf_counter()
                    client.processes.get(pid)
                    times.append(time.perf_counter() - start)
        finally:
            GATE.set()
            rt.stop(grace_period=1)
    return {"p50_ms": percentile(times, 0.5) * 1e3, "p99_ms": percentile(times, 0.99) * 1e3}


def fill(path: Path, count: int, status: str, kind: str = "trivial") -> None:
    """Write ``count`` processes of ``kind`` with ``status`` straight into a new store."""
    SqliteProcessStore(path).close()  # the schema
    steps = msgpack.packb(["hold"] if kind == "held" else ["one", "two", "three"])
    now = time.time()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode = WAL")
        for start in range(0, count, 50_000):
            rows = []
            for i in range(start, min(start + 50_000, count)):
                at = now - count + i
                finished = at + 1 if status != "pending" else None
                started = at if finished else None
                rows.append((new_process_id(at), kind, status, 10, None, steps,
                             msgpack.packb(i), msgpack.packb(i), None, None,
                             msgpack.packb({}), at, started, finished, 9))  # fmt: skip
            db.executemany(
                "INSERT INTO processes (id, kind, status, priority, key, step_names, params, "
                "result, error, current_step, correlation, created_at, started_at, finished_at, "
                "seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            db.commit()


def list_latency(count: int, repeat: int = 20) -> dict[str, float]:
    """P3: the first page of list over ``count`` finished processes (ms, median of ``repeat``)."""
    with tempfile.TemporaryDirectory() as data:
        path = Path(data) / "processes.db"
        fill(path, count, "completed")
        store = SqliteProcessStore(path)
        try:
            figures = {}
            cases = (("list_ms", {}), ("list_by_status_ms", {"status": "completed"}),
                     ("list_by_kind_ms", {"kind": "trivial"}))  # fmt: skip
            for label, filters in cases:
                times = []
                for _ in range(repeat):
                    start = time.perf_counter()
                    page = store.list(limit=50, **filters)
                    times.append(time.perf_counter() - start)
                assert len(page.items) == 50
                figures[label] = percentile(times, 0.5) * 1e3
            return figures
        finally:
            store.close()


def _rss_mib() -> float:
    with Path("/proc/self/status").open() as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_growth(count: int) -> dict[str, float]:
    """P4: the runtime's RSS over ``count`` pending processes, less over an empty store (MiB)."""
    figures = {}
    for label, pending in (("empty", 0), ("pending", count)):
        with tempfile.TemporaryDirectory() as data:
            # One "held" process runs (max_concurrent 1) and blocks; the rest stay pending.
            fill(Path(data) / "processes.db", pending or 1, "pending", "held")
            gc.collect()
            before = _rss_mib()
            GATE.clear()
            rt = tierd.Runtime(parse_config(_config(data)))
            rt.start()
            try:
                time.sleep(1.0)  # let admission and the sweeper settle
                figures[label] = _rss_mib() - before
            finally:
                GATE.set()
                rt.stop(grace_period=0.5)
    return {"rss_empty_mib": figures["empty"], "rss_pending_mib": figures["pending"],
            "rss_growth_mib": figures["pending"] - figures["empty"]}  # fmt: skip


def batch_against_messages(total: int, repeat: int = 2) -> dict[str, float]:
    """P5: one batch's items per second against plain tierd notifications, alternately."""
    items, messages = [], []
    for _ in range(repeat):
        items.append(batch_items(total))
        messages.append(inprocess.tierd_one_way(total))
    best_items, best_messages = max(items), max(messages)
    return {"items_per_s": best_items, "messages_per_s": best_messages,
            "ratio": best_items / best_messages}  # fmt: skip


def measure(
    processes: int, finished: int, pending: int, calls: int, batch: int = 100_000
) -> dict[str, Any]:
    """Every processes figure, as one dict for the report."""
    figures: dict[str, Any] = {}
    figures["P5 batch"] = batch_against_messages(batch) | {"items": batch}
    figures["P1 tierd processes/s"] = tierd_throughput(processes)
    figures["P1 Celery chains/s"] = celery_chains(processes)
    base = figures["P1 Celery chains/s"]
    if isinstance(base, float):
        figures["P1 ratio"] = figures["P1 tierd processes/s"] / base
    figures["P2 get"] = get_latency(calls)
    figures["P3 list"] = list_latency(finished) | {"finished": finished}
    figures["P4 rss"] = rss_growth(pending) | {"pending": pending}
    return figures
