"""W4: how dispatch, an empty sweep and memory scale with what is already queued.

These drive one `Level` directly, in one thread, with no daemon running, so
that the figure is the level's own cost per operation and nothing else.
"""

from __future__ import annotations

import gc
import random
import time
import tracemalloc
from typing import Any

from tierd.actors.builtin import Echo
from tierd.messaging.link import Router
from tierd.messaging.message import Address, Message
from tierd.orchestrators.deadlock import WaitForGraph
from tierd.orchestrators.level import Level
from tierd.orchestrators.slot import DaemonSpec

SENDER = Address("bench", 0)
SINK = Address("sink", 1)
TAKEN = 10_000
"""Messages dispatched per dispatch measurement."""
SWEEPS = 10_000
"""Sweeps per sweep measurement."""


def _filled_level(queued: int, payload_size: int = 64) -> Level:
    """A level whose one daemon is paused, with ``queued`` messages of mixed priority waiting."""
    spec = DaemonSpec(id="sink", factory=Echo, class_path="Echo", prefetch=10**9)
    level = Level(1, [spec], Router(), WaitForGraph(), queue_limit=None)
    level.slots["sink"].paused = True
    payload = b"x" * payload_size
    priorities = random.Random(1).choices(range(1, 21), k=queued)
    for i, priority in enumerate(priorities):
        level.submit(
            Message.notification(SENDER, SINK, {"id": i, "payload": payload}, priority=priority),
            None,
        )
    return level


def dispatch_cost(queued: int) -> float:
    """Seconds per hand-over with ``queued`` messages waiting (the level's pop and bookkeeping)."""
    level = _filled_level(queued + TAKEN)
    slot = level.slots["sink"]
    slot.paused = False
    gc.collect()
    with level._lock:  # noqa: SLF001 - measuring the level's own step
        started = time.perf_counter()
        for _ in range(TAKEN):
            level._take(slot)  # noqa: SLF001
        return (time.perf_counter() - started) / TAKEN


def empty_sweep_cost(pending: int) -> float:
    """Seconds per sweep that expires nothing, with ``pending`` deadlines in the heap."""
    level = _filled_level(pending)
    gc.collect()
    started = time.perf_counter()
    for _ in range(SWEEPS):
        level.sweep()
    return (time.perf_counter() - started) / SWEEPS


def memory_per_message(queued: int, payload_size: int = 64) -> float:
    """Bytes held per queued message of a ``payload_size``-byte payload, message included."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    level = _filled_level(queued, payload_size)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(level.queue) == queued
    return (after - before) / queued


def scaling_curve(sizes: list[int]) -> dict[str, Any]:
    """Dispatch and empty-sweep cost at each size, and memory per message at the largest."""
    return {
        "sizes": sizes,
        "dispatch_us": [dispatch_cost(n) * 1e6 for n in sizes],
        "empty_sweep_us": [empty_sweep_cost(n) * 1e6 for n in sizes],
        "memory_bytes_per_message": memory_per_message(min(max(sizes), 100_000)),
    }
