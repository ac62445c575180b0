"""Daemons used only by the tests."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import tierd

GATES: dict[str, threading.Event] = {}
"""Events a `Gate` waits on, by name; tests set them to let a Gate finish."""
ENTERED: dict[str, threading.Event] = {}
"""Events a `Gate` sets when it starts handling, by name."""


def gate(name: str) -> tuple[threading.Event, threading.Event]:
    """The (entered, release) pair of events of the Gate called ``name``."""
    return ENTERED.setdefault(name, threading.Event()), GATES.setdefault(name, threading.Event())


class Gate(tierd.Daemon):
    """Says it started, waits for its gate to open, replies with the payload."""

    def __init__(self, name: str) -> None:
        self.entered, self.release = gate(name)

    def handle(self, message: tierd.Message) -> Any:
        self.entered.set()
        if not self.release.wait(30):
            raise TimeoutError("gate never released")
        return message.payload


class Hop(tierd.Daemon):
    """Payload ``{"path": [a, b, ...]}``: requests a with path [b, ...].

    With an empty path it replies with its own address.

    A tierd error on the way is returned as ``{"error": name, "text": ...}``.
    """

    def handle(self, message: tierd.Message) -> Any:
        path = list(message.payload["path"])
        if not path:
            return str(self.address)
        try:
            return self.request(
                path[0], {"path": path[1:]}, timeout=message.payload.get("timeout", 30)
            )
        except tierd.TierdError as error:
            return {"error": type(error).__name__, "text": str(error)}


class Notifier(tierd.Daemon):
    """Payload ``{"to": address, "items": [...]}``: notifies each item to ``to`` in order."""

    def handle(self, message: tierd.Message) -> Any:
        for item in message.payload["items"]:
            self.notify(
                message.payload["to"], item, priority=message.payload.get("priority", "normal")
            )
        return len(message.payload["items"])


class FailingConstructor(tierd.Daemon):
    """Cannot even be built."""

    def __init__(self) -> None:
        raise RuntimeError("constructor fails on purpose")


class Tracer(tierd.Daemon):
    """Replies with the trace id of the message it got."""

    def handle(self, message: tierd.Message) -> Any:
        return message.trace_id


class TraceCheck(tierd.Daemon):
    """Requests ``to`` and replies with its own message's trace id and what ``to`` saw."""

    def __init__(self, to: str) -> None:
        self.to = to

    def handle(self, message: tierd.Message) -> Any:
        return {"mine": message.trace_id, "downstream": self.request(self.to, None, timeout=5)}


class Fragile(tierd.Daemon):
    """Raises ``ValueError`` for the payload ``"crash"``; otherwise replies with the payload."""

    def handle(self, message: tierd.Message) -> Any:
        if message.payload == "crash":
            raise ValueError("fragile daemon broke")
        return message.payload


class BadStart(tierd.Daemon):
    """Its ``on_start`` raises until the shared counter says it has failed twice."""

    starts: dict[str, int] = {}  # noqa: RUF012 - shared by every instance on purpose

    def __init__(self, name: str) -> None:
        self.name = name

    def on_start(self) -> None:
        count = BadStart.starts[self.name] = BadStart.starts.get(self.name, 0) + 1
        if count <= 2:
            raise RuntimeError(f"start {count} fails")

    def handle(self, message: tierd.Message) -> Any:
        return BadStart.starts[self.name]


class GatedRelay(tierd.Daemon):
    """Waits at its gate, then requests ``to`` with its payload and replies with that reply."""

    def __init__(self, name: str, to: str) -> None:
        self.entered, self.release = gate(name)
        self.to = to

    def handle(self, message: tierd.Message) -> Any:
        self.entered.set()
        if not self.release.wait(30):
            raise TimeoutError("gate never released")
        return self.request(self.to, message.payload, timeout=5)


class Busy(tierd.Daemon):
    """Sends itself one notification when it starts, then stays WORKING on it for ``seconds``."""

    def __init__(self, seconds: float = 30.0) -> None:
        self.seconds = seconds
        self.done = threading.Event()

    def on_start(self) -> None:
        self.notify(self.address, "work")

    def handle(self, message: tierd.Message) -> Any:
        self.done.wait(self.seconds)


class Flaky(tierd.Daemon):
    """Raises ``ConnectionError`` on the first ``failures`` deliveries of each message id.

    Replies ``{"payload": ..., "attempts": n}`` once it lets a message through.
    """

    seen: dict[str, int] = {}  # noqa: RUF012 - shared by every instance: survives restarts

    def __init__(self, failures: int = 2) -> None:
        self.failures = failures

    def handle(self, message: tierd.Message) -> Any:
        count = Flaky.seen[message.id] = Flaky.seen.get(message.id, 0) + 1
        if count <= self.failures:
            raise ConnectionError(f"delivery {count} of {message.id} fails")
        return {"payload": message.payload, "attempts": message.attempts}


class TenthCrasher(tierd.Daemon):
    """Raises ``ValueError`` for payloads divisible by ten; counts the others it handled."""

    handled: dict[str, int] = {}  # noqa: RUF012 - shared by every instance: survives restarts

    def __init__(self, name: str) -> None:
        self.name = name

    def handle(self, message: tierd.Message) -> Any:
        if message.payload % 10 == 0:
            raise ValueError(f"payload {message.payload} is poison")
        TenthCrasher.handled[self.name] = TenthCrasher.handled.get(self.name, 0) + 1
        return message.payload


class Hang(tierd.Daemon):
    """Never returns from ``handle`` until its gate opens (a hung handler)."""

    def __init__(self, name: str) -> None:
        self.entered, self.release = gate(name)

    def handle(self, message: tierd.Message) -> Any:
        self.entered.set()
        self.release.wait()
        return None


class IdLog(tierd.Daemon):
    """Appends ``"<id> <attempts> <pid>"`` to the file ``path`` for every message it handles.

    A notification is logged after ``delay`` seconds, once handled; a request
    is logged as ``"request <id> <attempts> <pid>"`` when it starts, then
    waits ``{"sleep": s}`` and replies ``{"pid": ..., "attempts": ...}``.
    One ``os.write`` per line on an ``O_APPEND`` file: the line is the
    kernel's before `handle` returns, so it outlives a ``kill -9`` of the runtime.
    """

    def __init__(self, path: str, delay: float = 0.0) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.delay = delay

    def handle(self, message: tierd.Message) -> Any:
        line = f"{message.id} {message.attempts} {os.getpid()}\n"
        if message.kind == "request":
            os.write(self.fd, f"request {line}".encode())
            time.sleep(message.payload.get("sleep", 0))
            return {"pid": os.getpid(), "attempts": message.attempts}
        if self.delay:
            time.sleep(self.delay)
        os.write(self.fd, line.encode())
        return None

    def on_stop(self) -> None:
        os.close(self.fd)


class Chatty(tierd.Daemon):
    """Logs ``chatting`` with ``self.log`` for every message; raises KeyError on ``"fail"``."""

    def handle(self, message: tierd.Message) -> Any:
        self.log.info("chatting", payload=message.payload)
        if message.payload == "fail":
            return {}["missing"]
        return message.payload


class Arrivals(tierd.Daemon):
    """Records when each notification was handed to it: ``{"op": "dump"}`` → [[payload, epoch]]."""

    def __init__(self) -> None:
        self.arrivals: list[list[Any]] = []

    def handle(self, message: tierd.Message) -> Any:
        if message.kind == "request":
            return list(self.arrivals)
        self.arrivals.append([message.payload, time.time()])
        return None
