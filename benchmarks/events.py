"""Live events: what following a runtime costs it, and what a stalled follower costs it.

- E1: N three-step processes (benchmarks.processes' ``trivial``), submitted
  and waited for, with no subscriber and with 10 subscribers (SUB sockets in
  a child process at nice 10, every event read; they stand for followers on
  other machines): processes per second, and the ratio.
- E2: N notifications from a Driver daemon to a Sink (W1, in-process), with
  no subscriber and with one stalled subscriber (a SUB with ``RCVHWM`` 1 and
  a small kernel buffer, subscribed to everything, that never reads):
  messages per second, and the ratio. Handling a message publishes nothing
  (``daemon_state`` events are the daemons' health, not their per-message
  moves), so this shows what a follower that is there costs the hot path.

- E3: as E2 with N sequential requests to an Echo (W2 in-process), where
  every request moves the daemon IDLE -> WORKING -> IDLE.

``python -m benchmarks.events [--processes N] [--messages N] [--repeat R]``;
``benchmarks.bench --only events`` runs it with the others.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq

import tierd
from tierd.config import parse_config
from tierd.logging import configure as configure_logging

from . import drivers
from .processes import _config

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
SUBSCRIBERS = 10
TIMEOUT = 600.0

_FOLLOWERS = r"""
import os, sys, zmq
os.nice(10)  # the followers stand for other machines: the runtime goes first on a busy one
endpoint, count, wanted = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
context = zmq.Context()
poller, sockets = zmq.Poller(), []
for _ in range(count):
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"process.")
    sub.connect(endpoint)
    poller.register(sub, zmq.POLLIN)
    sockets.append(sub)
print("ready", flush=True)
seen, completed = [0] * count, [0] * count
while min(completed) < wanted:
    ready = dict(poller.poll(30_000))
    if not ready:
        break
    for index, sub in enumerate(sockets):
        while sub in ready:
            try:
                topic, data = sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            seen[index] += 1
            if b"process_completed" in data:
                completed[index] += 1
print(min(seen), min(completed), flush=True)
"""


def _endpoint() -> str:
    from tests.network import endpoint  # a free loopback port

    return endpoint()


@contextlib.contextmanager
def _runtime(events: str) -> Iterator[tierd.Runtime]:
    with tempfile.TemporaryDirectory() as data:
        config = _config(data)
        config["runtime"]["events"] = events
        runtime = tierd.Runtime(parse_config(config))
        runtime.start()
        try:
            yield runtime
        finally:
            runtime.stop(grace_period=1)


def _run_processes(runtime: tierd.Runtime, total: int) -> tuple[float, float]:
    """Processes per second, and CPU microseconds per process (every thread of this process)."""
    started, cpu = time.perf_counter(), time.process_time()
    ids = [runtime.processes.submit("trivial", i) for i in range(total)]
    for pid in ids:
        runtime.processes.wait(pid, timeout=TIMEOUT)
    used = time.process_time() - cpu
    return total / (time.perf_counter() - started), used / total * 1e6


def processes_alone(total: int) -> tuple[float, float]:
    """E1 without subscribers (the events socket bound, nobody on it)."""
    with _runtime(_endpoint()) as runtime:
        return _run_processes(runtime, total)


def processes_followed(
    total: int, subscribers: int = SUBSCRIBERS
) -> tuple[tuple[float, float], int]:
    """E1 with ``subscribers`` SUB sockets reading every process event.

    Returns:
        Processes per second and CPU microseconds per process, and the
        fewest events one subscriber read.
    """
    with _runtime(_endpoint()) as runtime:
        followers = subprocess.Popen(
            [sys.executable, "-c", _FOLLOWERS, runtime.events_address, str(subscribers),
             str(total)],
            stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        try:
            assert followers.stdout is not None
            followers.stdout.readline()  # ready: connected; subscriptions follow
            publisher = runtime.bridge.events if runtime.bridge is not None else None
            deadline = time.monotonic() + 10
            while publisher is not None and not publisher.subscriptions:
                if time.monotonic() > deadline:
                    raise TimeoutError("the subscribers never subscribed")
                time.sleep(0.01)  # polling a count: the subscriptions arrive over TCP
            rate = _run_processes(runtime, total)
            out, _ = followers.communicate(timeout=TIMEOUT)
            fewest = int(out.split()[0]) if out.strip() else 0
        finally:
            if followers.poll() is None:
                followers.kill()
                followers.wait()
        return rate, fewest


def _w1_runtime(events: str, total: int) -> tierd.Runtime:
    config = {
        "runtime": {"endpoint": "", "metrics": "", "events": events, "sweep_interval": 0.1,
                    "log_level": "warning"},
        "levels": [{"level": 1, "daemons": [
            {"id": "driver0", "class": "benchmarks.drivers:Driver"},
            {"id": "sink", "class": "benchmarks.drivers:Sink",
             "options": {"name": "e2", "expected": total}},
        ]}],
    }  # fmt: skip
    return tierd.Runtime(parse_config(config))


def messages(total: int, *, stalled: bool) -> tuple[float, float]:
    """E2: W1 notifications per second and CPU microseconds per message, stalled follower or not."""
    runtime = _w1_runtime(_endpoint(), total)
    runtime.start()
    context: zmq.Context[Any] = zmq.Context()
    try:
        if stalled:
            _stall(context, runtime)
        drivers.FINISH_LINES["e2"] = threading.Event()
        drivers.FINISH_LINES["e2-driver"] = threading.Event()
        job = {"name": "e2-driver", "op": "notify", "to": "sink@1", "n": total, "size": 64}
        started, cpu = time.perf_counter(), time.process_time()
        runtime.send("driver0@1", job)
        if not drivers.FINISH_LINES["e2"].wait(TIMEOUT):
            raise TimeoutError("the sink did not see every notification")
        used = time.process_time() - cpu
        return total / (time.perf_counter() - started), used / total * 1e6
    finally:
        runtime.stop(grace_period=0)
        context.destroy(linger=0)


def requests(total: int, *, stalled: bool) -> tuple[float, float]:
    """E3: W2 round trips per second and CPU microseconds each, stalled follower or not."""
    config = {
        "runtime": {"endpoint": "", "metrics": "", "events": _endpoint(), "log_level": "warning"},
        "levels": [{"level": 1, "daemons": [{"id": "echo", "class": "tierd.actors.builtin:Echo"}]}],
    }
    runtime = tierd.Runtime(parse_config(config))
    runtime.start()
    context: zmq.Context[Any] = zmq.Context()
    try:
        if stalled:
            _stall(context, runtime)
        for _ in range(min(total, 500)):
            runtime.request("echo@1", 1)  # warm up
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(total):
            runtime.request("echo@1", 1)
        used = time.process_time() - cpu
        return total / (time.perf_counter() - started), used / total * 1e6
    finally:
        runtime.stop(grace_period=0)
        context.destroy(linger=0)


def _stall(context: zmq.Context[Any], runtime: tierd.Runtime) -> None:
    """Connect a SUB to everything that never reads; return once the runtime follows it."""
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 1)
    sub.setsockopt(zmq.RCVBUF, 4096)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(runtime.events_address)
    deadline = time.monotonic() + 10
    while not runtime.events.active:
        if time.monotonic() > deadline:
            raise TimeoutError("the stalled subscriber never subscribed")
        time.sleep(0.01)  # polling a flag: the subscription arrives over TCP


def measure(processes: int, total_messages: int, repeat: int = 3) -> dict[str, Any]:
    """Every events figure (medians of ``repeat`` alternating runs), for the report."""
    runs: dict[str, list[tuple[float, float]]] = {
        "E1 alone": [], "E1 10 subscribers": [], "E2 alone": [], "E2 stalled subscriber": [],
        "E3 alone": [], "E3 stalled subscriber": [],
    }  # fmt: skip
    fewest = []
    for _ in range(repeat):
        runs["E1 alone"].append(processes_alone(processes))
        followed, least = processes_followed(processes)
        runs["E1 10 subscribers"].append(followed)
        fewest.append(least)
        runs["E2 alone"].append(messages(total_messages, stalled=False))
        runs["E2 stalled subscriber"].append(messages(total_messages, stalled=True))
        runs["E3 stalled subscriber"].append(requests(total_messages, stalled=True))
        runs["E3 alone"].append(requests(total_messages, stalled=False))
    figures: dict[str, Any] = {"E1 processes": processes, "E2 messages": total_messages}
    for name, results in runs.items():
        figures[f"{name} per s"] = statistics.median(rate for rate, _ in results)
        figures[f"{name} cpu us"] = statistics.median(cpu for _, cpu in results)
    figures["E1 fewest events one subscriber read"] = min(fewest)
    pairs = (("E1", "10 subscribers"), ("E2", "stalled subscriber"), ("E3", "stalled subscriber"))
    for workload, other in pairs:
        figures[f"{workload} ratio"] = (
            figures[f"{workload} {other} per s"] / figures[f"{workload} alone per s"]
        )
        figures[f"{workload} cpu ratio"] = (
            figures[f"{workload} {other} cpu us"] / figures[f"{workload} alone cpu us"]
        )
    return figures


def print_figures(figures: dict[str, Any]) -> None:
    """The events section of the report."""
    print(f"\nLive events ({figures['E1 processes']:,} processes, {figures['E2 messages']:,} msgs)")
    print(f"E1 {figures['E1 alone per s']:,.0f} processes/s alone "
          f"({figures['E1 alone cpu us']:,.0f} us CPU each), "
          f"{figures['E1 10 subscribers per s']:,.0f} with 10 subscribers "
          f"({figures['E1 10 subscribers cpu us']:,.0f} us; each read >= "
          f"{figures['E1 fewest events one subscriber read']:,} events): "
          f"ratio {figures['E1 ratio']:.3f}, CPU ratio {figures['E1 cpu ratio']:.3f}")  # fmt: skip
    print(f"E2 W1 {figures['E2 alone per s']:,.0f} msg/s alone "
          f"({figures['E2 alone cpu us']:.1f} us CPU each), "
          f"{figures['E2 stalled subscriber per s']:,.0f} with a stalled subscriber "
          f"({figures['E2 stalled subscriber cpu us']:.1f} us): ratio {figures['E2 ratio']:.3f}, "
          f"CPU ratio {figures['E2 cpu ratio']:.3f} (target: within 5 %)")  # fmt: skip
    print(f"E3 W2 {figures['E3 alone per s']:,.0f} rt/s alone "
          f"({figures['E3 alone cpu us']:.1f} us CPU each), "
          f"{figures['E3 stalled subscriber per s']:,.0f} with a stalled subscriber "
          f"({figures['E3 stalled subscriber cpu us']:.1f} us): ratio {figures['E3 ratio']:.3f}, "
          f"CPU ratio {figures['E3 cpu ratio']:.3f} (target: within 5 %)")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run E1 and E2; print the figures (speed is reported, never asserted)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.events", description=__doc__)
    parser.add_argument("--processes", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    configure_logging("console", "warning")
    print_figures(measure(args.processes, args.messages, args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
