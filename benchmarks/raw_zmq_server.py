"""The raw pyzmq baseline's server: a ROUTER that decodes msgpack and echoes or counts.

Run as ``python -m benchmarks.raw_zmq_server tcp://127.0.0.1:PORT``; it prints
``ready`` once bound and stops on ``{"op": "stop"}``.
"""

from __future__ import annotations

import sys

import msgpack
import zmq


def serve(endpoint: str) -> None:
    """Answer requests with their payload, count notifications, report the count on ask."""
    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    router.linger = 0
    router.bind(endpoint)
    print("ready", flush=True)
    counted = 0
    try:
        while True:
            identity, frame = router.recv_multipart()
            message = msgpack.unpackb(frame)
            op = message.get("op")
            if op == "request":
                router.send_multipart([identity, msgpack.packb({"reply": message["payload"]})])
            elif op == "notify":
                counted += 1
            elif op == "count":
                router.send_multipart([identity, msgpack.packb({"count": counted})])
            elif op == "stop":
                return
    finally:
        router.close()
        context.term()


if __name__ == "__main__":
    serve(sys.argv[1])
