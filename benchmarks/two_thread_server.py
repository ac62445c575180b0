"""The floor tierd's architecture allows: a bare two-thread pyzmq server built like the bridge.

An I/O thread reads the ROUTER and hands each request to a worker thread
through a `queue.SimpleQueue`; the worker replies on the ROUTER itself,
under a lock, as a tierd daemon's thread does. Like the bridge, the I/O
thread waits on the ROUTER's ``zmq.FD`` (never in a blocking ``recv`` that
would hold the socket), drains under the lock, and the worker reads
``zmq.EVENTS`` after its send so that a frame whose signal its call consumed
is not left waiting. No envelope, no validation, no queue by priority: what is
left is the cost of the hand-off between two threads under the GIL.

Run as ``python -m benchmarks.two_thread_server tcp://127.0.0.1:PORT``; it
speaks the raw server's protocol (`benchmarks.raw_zmq_server`) and prints
``ready`` once bound.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from typing import Any

import msgpack
import zmq


def serve(endpoint: str) -> None:  # noqa: PLR0915 - one server, read top to bottom
    """Answer requests from a worker thread, count notifications in the I/O thread."""
    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    router.linger = 0
    router.bind(endpoint)
    lock = threading.Lock()
    work: queue.SimpleQueue[tuple[bytes, Any] | None] = queue.SimpleQueue()
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)

    def worker() -> None:
        while (item := work.get()) is not None:
            identity, payload = item
            frame = msgpack.packb({"reply": payload})
            with lock:
                router.send_multipart([identity, frame])
                waiting = router.getsockopt(zmq.EVENTS) & zmq.POLLIN
            if waiting:  # our call consumed the descriptor's signal: wake the I/O thread
                os.write(wake_write, b"\0")

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    poller = zmq.Poller()
    poller.register(router.getsockopt(zmq.FD), zmq.POLLIN)
    poller.register(wake_read, zmq.POLLIN)
    print("ready", flush=True)
    counted = 0
    more = True
    try:
        while True:
            events = dict(poller.poll(0 if more else None))
            if wake_read in events:
                os.read(wake_read, 4096)
            batch = []
            with lock:
                try:
                    while len(batch) < 256:
                        batch.append(router.recv_multipart(zmq.NOBLOCK))
                except zmq.Again:
                    pass
            more = len(batch) == 256
            for identity, frame in batch:
                message = msgpack.unpackb(frame)
                op = message.get("op")
                if op == "request":
                    work.put((identity, message["payload"]))
                elif op == "notify":
                    counted += 1
                elif op == "count":
                    with lock:
                        router.send_multipart([identity, msgpack.packb({"count": counted})])
                    more = True  # the send may have consumed the descriptor's signal
                elif op == "stop":
                    return
    finally:
        work.put(None)
        thread.join(5)
        router.close()
        context.term()


if __name__ == "__main__":
    serve(sys.argv[1])
