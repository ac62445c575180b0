"""Daemons that drive the in-process workloads from inside a level."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import tierd

if TYPE_CHECKING:
    import threading

FINISH_LINES: dict[str, threading.Event] = {}
"""Events a Sink or a Driver sets when its run is over, by name."""
RESULTS: dict[str, Any] = {}
"""What each Driver measured, by name."""


class Sink(tierd.Daemon):
    """Counts notifications and sets its finish line at ``expected``."""

    def __init__(self, name: str, expected: int) -> None:
        self.name = name
        self.expected = expected
        self.count = 0

    def handle(self, message: tierd.Message) -> Any:
        self.count += 1
        if self.count == self.expected:
            FINISH_LINES[self.name].set()
        return None


class Driver(tierd.Daemon):
    """On a notification, runs one loop of notifications or requests, then sets its finish line.

    The payload says what to do: ``{"name", "op": "notify"|"request", "to", "n", "size"}``.
    Request latencies are kept in `RESULTS` under the name.
    """

    def handle(self, message: tierd.Message) -> Any:
        job = message.payload
        to, n = job["to"], job["n"]
        payload = b"x" * job.get("size", 64)
        latencies = []
        if job["op"] == "notify":
            for i in range(n):
                self.notify(to, {"id": i, "payload": payload})
        else:
            for i in range(n):
                sent = time.perf_counter()
                self.request(to, {"id": i, "payload": payload}, timeout=120)
                latencies.append(time.perf_counter() - sent)
        RESULTS[job["name"]] = latencies
        FINISH_LINES[job["name"]].set()
        return None
