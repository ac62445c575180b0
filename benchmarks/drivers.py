"""Daemons that drive the in-process workloads from inside a level."""

from __future__ import annotations

import threading
import time
from typing import Any

import tierd

PAYLOAD_64 = b"x" * 64


class Sink(tierd.Daemon):
    """Counts notifications; sets `done` when it has seen `expected` of them."""

    done: dict[str, threading.Event] = {}  # noqa: RUF012 - the benchmark's finish line
    expected: dict[str, int] = {}  # noqa: RUF012

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0

    def handle(self, message: tierd.Message) -> Any:
        self.count += 1
        if self.count == Sink.expected[self.name]:
            Sink.done[self.name].set()
        return None


class Driver(tierd.Daemon):
    """On a request ``{"op": "notify"|"request", "to": ..., "n": ...}``, runs the loop and times it."""

    def handle(self, message: tierd.Message) -> Any:
        op, to, n = message.payload["op"], message.payload["to"], message.payload["n"]
        payload_size = message.payload.get("size", 64)
        latencies = []
        started = time.perf_counter()
        if op == "notify":
            for i in range(n):
                self.notify(to, {"id": i, "payload": b"x" * payload_size})
        else:
            for i in range(n):
                sent = time.perf_counter()
                self.request(to, {"id": i, "payload": PAYLOAD_64}, timeout=60)
                latencies.append(time.perf_counter() - sent)
        return {"seconds": time.perf_counter() - started, "latencies": latencies}
