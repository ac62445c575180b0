"""The per-message cost of a level's hot path, in one thread, with the GC on and off.

``python -m benchmarks.hot_path`` queues N notifications for a paused daemon
the way `Daemon.notify` does (parse, build, submit), then takes and finishes
them the way a daemon's thread does (`Level.finished` hands the next one
over), and prints microseconds of CPU per message for each half.
"""

from __future__ import annotations

import gc
import sys
import time

from tierd.logging import configure as configure_logging
from tierd.messaging.message import DEFAULT_TIMEOUT, Address, Message, parse_priority
from tierd.testing import runtime_from_dict

N = 100_000


def measure(n: int = N) -> tuple[float, float]:
    """CPU µs per message to produce and to consume ``n`` notifications."""
    runtime = runtime_from_dict(
        {
            "levels": [
                {"level": 1, "daemons": [{"id": "sink", "class": "tierd.actors.builtin:Echo"}]}
            ]
        },
        sweep_interval=5,
    )
    runtime.start()
    try:
        level, router = runtime.levels[1], runtime.router
        runtime.pause("sink@1")
        slot = level.slots["sink"]
        sender = Address("driver", 1)
        started = time.thread_time()
        for i in range(n):
            recipient = Address.parse("sink@1")
            message = Message.notification(
                sender, recipient, {"id": i}, parse_priority("normal"), DEFAULT_TIMEOUT, ""
            )  # as `Daemon.notify` makes it
            router.check(recipient).submit(message, None)
        produce = (time.thread_time() - started) / n
        with level._lock:  # noqa: SLF001 - driving the level the way a daemon thread does
            slot.paused = False
            message = level._take(slot)  # noqa: SLF001
        started = time.thread_time()
        handled = 0
        while message is not None:
            handled += 1
            message = level.finished("sink", slot.generation, message.id, None, None, 1e-6)
        consume = (time.thread_time() - started) / max(handled, 1)
        return produce * 1e6, consume * 1e6
    finally:
        runtime.stop(grace_period=0)


def main() -> int:
    configure_logging("console", "warning")
    for label, collect in (("gc on", True), ("gc off", False)):
        if not collect:
            gc.disable()
        produce, consume = measure()
        gc.enable()
        print(f"{label:>7}: produce {produce:.2f} µs/message, consume {consume:.2f} µs/message")
    return 0


if __name__ == "__main__":
    sys.exit(main())
