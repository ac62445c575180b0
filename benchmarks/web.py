"""The HTTP API (``runtime.http``): its cost per call against `tierd.Client`, live viewers' cost.

- H1: 16 concurrent clients, each submitting a process (``POST /api/processes``)
  and reading its status (``GET /api/processes/{id}``) in a loop, against a
  ``tierd run`` subprocess: pairs per second and the p99 of one pair. The same
  through 16 `tierd.Client`s (``processes.submit`` + ``processes.get``) in the
  same run, alternating.
- H2: N three-step processes run in-process (as P1 does) with the HTTP API on,
  with no viewer, with a sink that drops every event (so the runner makes its
  events, which it skips with nobody following), and then with 50
  Server-Sent Events viewers of every topic
  (in a subprocess, so that they do not share this process's GIL): processes
  per second each way, the runtime process's CPU time per process each way
  (the viewers' process competes for the same cores, which the rate
  feels and the CPU time does not), and the events the viewers received.
- H0: in-process W1 with and without ``runtime.http`` set: the hot path must
  not slow for having the web stack loaded.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

import tierd
from tierd.config import parse_config
from tierd.testing import wait_until

from . import drivers
from .measure import median, percentile
from .processes import ROOT

CLIENTS = 16
VIEWERS = 50


def _topology(data_dir: str, endpoint: str, http: str) -> str:
    return f"""
[runtime]
name = "bench-http"
endpoint = "{endpoint}"
metrics = ""
http = "{http}"
data_dir = "{data_dir}"
log_level = "warning"
sweep_interval = 0.05

[[levels]]
level = 1
  [[levels.daemons]]
  id = "echo"
  class = "tierd.actors.builtin:Echo"

[processes]
  [[processes.kinds]]
  kind = "trivial"
  class = "benchmarks.processes:Trivial"
"""


def _pairs(per_client: int, one_pair: Any, clients: int = CLIENTS) -> tuple[float, list[float]]:
    """Run ``one_pair(index)`` ``per_client`` times in each of ``clients`` threads."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    start_line = threading.Barrier(clients + 1)

    def work(index: int) -> None:
        start_line.wait()
        for _ in range(per_client):
            began = time.perf_counter()
            one_pair(index)
            latencies[index].append(time.perf_counter() - began)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    start_line.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    flat = [value for one in latencies for value in one]
    return len(flat) / elapsed, flat


def submit_and_get(per_client: int, repeat: int) -> dict[str, Any]:
    """H1: submit + status over HTTP and over ZeroMQ, 16 clients each, against `tierd run`."""
    from tests.network import endpoint  # a free port
    from tests.processes import free_port

    address, http = endpoint(), f"127.0.0.1:{free_port()}"
    with tempfile.TemporaryDirectory() as data:
        config = Path(data) / "bench.toml"
        config.write_text(_topology(data, address, http))
        server = subprocess.Popen(
            [sys.executable, "-m", "tierd.cli", "run", str(config)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        try:
            assert server.stdout is not None
            for line in server.stdout:
                if "dashboard and API" in line:
                    break
            http_clients = [httpx.Client(base_url=f"http://{http}", timeout=30)
                            for _ in range(CLIENTS)]  # fmt: skip
            zmq_clients = [tierd.Client(address) for _ in range(CLIENTS)]

            def over_http(index: int) -> None:
                client = http_clients[index]
                made = client.post("/api/processes", json={"kind": "trivial", "params": index})
                client.get(f"/api/processes/{made.json()['process_id']}").raise_for_status()

            refused = [0]

            def over_zmq(index: int) -> None:
                client = zmq_clients[index]
                while True:  # a runtime refuses control queries past 256 waiting: retry
                    try:
                        client.processes.get(client.processes.submit("trivial", index))
                    except tierd.Rejected:
                        refused[0] += 1
                        time.sleep(0.001)
                        continue
                    return

            _pairs(max(per_client // 10, 2), over_http)  # warm up both
            _pairs(max(per_client // 10, 2), over_zmq)
            runs: dict[str, list[tuple[float, list[float]]]] = {
                "http": [], "client": [], "client_8": [],
            }  # fmt: skip
            for _ in range(repeat):
                runs["http"].append(_pairs(per_client, over_http))
                runs["client"].append(_pairs(per_client, over_zmq))
                # Half as many Clients, for the latency with less queueing.
                runs["client_8"].append(_pairs(per_client * 2, over_zmq, clients=8))
            for client in http_clients:
                client.close()
            for zmq_client in zmq_clients:
                zmq_client.close()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)
    figures: dict[str, Any] = {}
    for name, results in runs.items():
        figures[name] = {
            "pairs_per_s": median([rate for rate, _ in results]),
            "p50_ms": percentile(results[-1][1], 0.50) * 1e3,
            "p99_ms": percentile(results[-1][1], 0.99) * 1e3,
        }
    figures["ratio"] = figures["http"]["pairs_per_s"] / figures["client"]["pairs_per_s"]
    figures["client"]["refused_busy"] = refused[0]  # in the 16-client runs, nearly all
    return figures


def _processes_config(data_dir: str) -> dict[str, Any]:
    return {
        "runtime": {"endpoint": "", "metrics": "", "http": "127.0.0.1:0", "data_dir": data_dir,
                    "log_level": "warning", "sweep_interval": 0.05},
        "levels": [{"level": 1, "daemons": [{"id": "echo", "class": "tierd.actors.builtin:Echo"}]}],
        "processes": {"kinds": [{"kind": "trivial", "class": "benchmarks.processes:Trivial"}]},
    }  # fmt: skip


class _Discard:
    """A sink that drops every event: the runner builds its events, nobody is sent them."""

    def publish(self, topic: str, event: Any) -> None:
        """Drop the event."""


def _run_processes(
    total: int, viewers: int, *, built: bool = False
) -> tuple[float, dict[str, Any]]:
    """Processes per second with ``viewers`` SSE streams open; what the viewers got.

    With ``built``, a sink that drops every event is added, so that the runner
    makes its events as it does for any follower.
    """
    with tempfile.TemporaryDirectory() as data:
        runtime = tierd.Runtime(parse_config(_processes_config(data)))
        runtime.start()
        watcher = None
        try:
            assert runtime.http is not None
            if viewers:
                watcher = subprocess.Popen(
                    [sys.executable, "-m", "benchmarks.web", "view",
                     f"http://{runtime.http.address}", str(viewers)],
                    cwd=ROOT, stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True,
                )  # fmt: skip
                assert watcher.stdout is not None
                assert watcher.stdout.readline().strip() == "open"
                live = runtime.http.live
                wait_until(lambda: live.viewers == viewers, timeout=30)
            if built:
                runtime.events.add(_Discard())
            started, cpu = time.perf_counter(), time.process_time()
            ids = [runtime.processes.submit("trivial", i) for i in range(total)]
            for process_id in ids:
                runtime.processes.wait(process_id, timeout=600)
            rate = total / (time.perf_counter() - started)
            cpu_us = (time.process_time() - cpu) / total * 1e6
            got: dict[str, Any] = {"events": 0, "dropped": 0}
            if watcher is not None:
                out, _ = watcher.communicate("stop\n", timeout=60)
                got = json.loads(out.strip().splitlines()[-1])
            got["runtime_cpu_us_per_process"] = cpu_us
            return rate, got
        finally:
            if watcher is not None and watcher.poll() is None:
                watcher.kill()
            runtime.stop(grace_period=1)


def viewers_cost(total: int, repeat: int) -> dict[str, Any]:
    """H2: processes per second with no viewer and with 50 viewers, alternating."""
    alone, built, watched, received, alone_cpu, built_cpu = [], [], [], {}, [], []
    for _ in range(repeat):
        rate, quiet = _run_processes(total, 0)
        alone.append(rate)
        alone_cpu.append(quiet["runtime_cpu_us_per_process"])
        rate, made = _run_processes(total, 0, built=True)
        built.append(rate)
        built_cpu.append(made["runtime_cpu_us_per_process"])
        rate, received = _run_processes(total, VIEWERS)
        watched.append(rate)
    return {
        "no_viewer_cpu_us_per_process": median(alone_cpu),
        "events_built_per_s": median(built),
        "events_built_cpu_us_per_process": median(built_cpu),
        "ratio_to_built": median(watched) / median(built),
        "no_viewer_per_s": median(alone),
        "viewers_per_s": median(watched),
        "ratio": median(watched) / median(alone),
        "viewers": VIEWERS,
        "received": received,
    }


def hot_path(one_way: int, repeat: int) -> dict[str, Any]:
    """H0: in-process W1 with ``runtime.http`` off and on, alternating."""
    from tierd.testing import runtime_from_dict

    def w1(http: str) -> float:
        sink = {"id": "sink", "class": "benchmarks.drivers:Sink",
                "options": {"name": "h0", "expected": one_way}}  # fmt: skip
        daemons = [{"id": "driver0", "class": "benchmarks.drivers:Driver"}, sink]
        runtime = runtime_from_dict(
            {"runtime": {"http": http}, "levels": [{"level": 1, "daemons": daemons}]},
            sweep_interval=0.1,
        )
        runtime.start()
        try:
            drivers.FINISH_LINES["h0"] = threading.Event()
            drivers.FINISH_LINES["h0-driver"] = threading.Event()
            job = {"name": "h0-driver", "op": "notify", "to": "sink@1", "n": one_way, "size": 64}
            started = time.perf_counter()
            runtime.send("driver0@1", job)
            if not drivers.FINISH_LINES["h0"].wait(300):
                raise TimeoutError("the sink did not see every notification")
            return one_way / (time.perf_counter() - started)
        finally:
            runtime.stop(grace_period=0)

    off, on = [], []
    # Pinned to one core, as the in-process workloads of bench.py are (see its docstring).
    everything = os.sched_getaffinity(0) if hasattr(os, "sched_setaffinity") else None
    if everything is not None:
        os.sched_setaffinity(0, {min(everything)})
    try:
        for _ in range(repeat):
            off.append(w1(""))
            on.append(w1("127.0.0.1:0"))
    finally:
        if everything is not None:
            os.sched_setaffinity(0, everything)
    return {"off_per_s": median(off), "on_per_s": median(on), "ratio": median(on) / median(off)}


def measure(per_client: int, processes: int, one_way: int, repeat: int) -> dict[str, Any]:
    """Every HTTP figure."""
    return {
        "H0 hot path": hot_path(one_way, repeat),
        "H1 submit+get": submit_and_get(per_client, repeat),
        "H2 viewers": viewers_cost(processes, repeat),
    }


async def _view(url: str, count: int) -> None:
    """Open ``count`` streams of every topic; on a line on stdin print what they got, as JSON.

    Events are counted in the raw bytes (``event:`` lines), not parsed: a browser
    on another machine does the parsing, and this process shares the runtime's cores.
    """
    got = {"events": 0, "dropped": 0, "bytes": 0}
    async with httpx.AsyncClient(timeout=None) as client:  # noqa: S113 - streams stay open

        async def one() -> None:
            async with client.stream("GET", f"{url}/api/events") as response:
                async for chunk in response.aiter_raw():
                    got["bytes"] += len(chunk)
                    dropped = chunk.count(b"event: dropped\n")
                    got["dropped"] += dropped
                    got["events"] += chunk.count(b"event: ") - dropped

        tasks = [asyncio.create_task(one()) for _ in range(count)]
        print("open", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps(got), flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["view"]:
        asyncio.run(_view(sys.argv[2], int(sys.argv[3])))
