"""A tierd client written from docs/protocol.md alone: pyzmq and msgpack, no tierd import.

`tests/test_protocol.py` drives a runtime with it; a test there checks that
this module imports nothing of tierd.
"""

from __future__ import annotations

import os
import time
from typing import Any

import msgpack
import zmq


def new_id() -> str:
    """128 random bits in hex, as §4 advises."""
    return os.urandom(16).hex()


class RawClient:
    """One DEALER (§1) with a stable routing id; frames are msgpack envelopes (§2)."""

    def __init__(self, endpoint: str) -> None:
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.name = "raw-" + os.urandom(8).hex()
        self.socket.setsockopt(zmq.ROUTING_ID, self.name.encode())
        self.socket.setsockopt(zmq.MAXMSGSIZE, 2 << 20)
        self.socket.connect(endpoint)

    def close(self) -> None:
        self.socket.close(0)
        self.context.term()

    def send_body(self, body: bytes) -> None:
        self.socket.send(body)

    def send_frame(self, envelope: dict[str, Any]) -> None:
        self.send_body(msgpack.packb(envelope, use_bin_type=True))

    def receive(self, timeout: float = 5.0) -> dict[str, Any]:
        if not self.socket.poll(int(timeout * 1000)):
            raise TimeoutError("no frame from the runtime")
        return msgpack.unpackb(self.socket.recv(), raw=False)

    def message(
        self, kind: str, recipient: str, payload: Any = None, *, priority: int = 10
    ) -> dict[str, Any]:
        """A message map (§4) with the defaults spelled out."""
        return {
            "id": new_id(), "created_at": time.time(), "sender": f"{self.name}@0",
            "recipient": recipient, "kind": kind, "priority": priority, "payload": payload,
            "parent_id": None, "timeout": 30.0, "trace_id": "", "status": "pending",
            "attempts": 0, "wait_chain": [],
        }  # fmt: skip

    def msg(self, message: dict[str, Any], **flags: Any) -> None:
        self.send_frame({"v": 1, "t": "msg", "m": message, **flags})

    def request(self, recipient: str, payload: Any = None) -> dict[str, Any]:
        """A request without an ack (§3.1); the reply `msg` it gets, skipping other frames."""
        message = self.message("request", recipient, payload)
        self.msg(message, ack=False)
        while True:
            frame = self.receive()
            if frame["t"] == "msg" and frame["m"]["parent_id"] == message["id"]:
                return frame
