"""`AsyncClient`: `Client` for asyncio programs, many calls in flight on one connection.

The frames and their correlation are `Calls`, the same code `Client` runs;
only the I/O differs. One reader task (started by the first call) feeds every
frame that arrives to `Calls.received`, which settles the call it answers and
wakes the task awaiting it; so any number of tasks can await their own
calls at once on one socket. A call whose task is cancelled, or whose
timeout passes, leaves the table of calls in flight at once; its late answer
is dropped.

An `AsyncClient` belongs to the event loop that first uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from typing import TYPE_CHECKING, Any

import zmq
import zmq.asyncio

from ...logging import get_logger
from ..message import DEFAULT_TIMEOUT, Address, check_timeout, not_before_of, parse_priority
from .calls import PROBE_TIMEOUT, Call, Calls, Window
from .client import (
    ACK_TIMEOUT,
    DEFAULT_ENDPOINT,
    SEND_WINDOW,
    Curve,
    connect_dealer,
    connect_subscriber,
    events_endpoint,
)
from .codec import DEFAULT_MAX_MESSAGE_BYTES
from .event_wire import decode_event, subscription_prefixes

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable
    from pathlib import Path
    from types import TracebackType

_log = get_logger(component="async_client")
_READ_BATCH = 256
"""Frames the reader takes from the socket before it lets other tasks run."""


class AsyncClient:
    """A connection to a runtime's endpoint for asyncio code: `Client`'s calls, awaited.

    Example, in a FastAPI-style application (one client for the whole app)::

        app = FastAPI()

        @app.on_event("startup")
        async def connect() -> None:
            app.state.tierd = tierd.AsyncClient("tcp://127.0.0.1:5555")

        @app.get("/echo/{x}")
        async def echo(x: int) -> dict:
            return await app.state.tierd.request("echo@2", {"x": x}, timeout=5.0)

    Args and errors are those of `Client`; every call is a coroutine. Calls
    from many tasks may be in flight at once; cancelling a task cancels its
    wait (a message already sent is not recalled).
    """

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        *,
        server_key: str | Path | bytes | None = None,
        client_key: str | Path | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        ack_timeout: float = ACK_TIMEOUT,
    ) -> None:
        self.endpoint = endpoint
        self.max_bytes = max_message_bytes
        self.ack_timeout = check_timeout(ack_timeout, "ack_timeout")
        self._calls = Calls.for_client(max_message_bytes)
        self.address = self._calls.address
        """The sender address of this client's messages (level 0: outside every level)."""
        self._reader: asyncio.Task[None] | None = None
        self._context = zmq.asyncio.Context()
        self._socket = self._context.socket(zmq.DEALER)
        self._curve: Curve | None = None
        try:
            self._curve = connect_dealer(
                self._socket, endpoint, max_message_bytes, server_key, client_key
            )
        except BaseException:
            self.close()
            raise

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the socket at once, dropping anything unsent; closing twice does nothing."""
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        if not self._socket.closed:
            self._socket.close(linger=0)
        if not self._context.closed:
            self._context.term()

    @property
    def in_flight(self) -> int:
        """Calls waiting for their answer now."""
        return len(self._calls.pending)

    # -- the calls ---------------------------------------------------------------

    async def send(
        self,
        target: str | Address,
        payload: Any = None,
        *,
        priority: int | str = "normal",
        timeout: float = DEFAULT_TIMEOUT,
        wait: bool = False,
        delay: float | None = None,
        not_before: float | None = None,
    ) -> str:
        """Send a notification; return its id once the runtime has accepted it (`Client.send`)."""
        call = self._calls.send(
            target, payload, priority=priority, timeout=timeout,
            ack_timeout=self.ack_timeout, wait=wait,
            not_before=not_before_of(delay, not_before, time.time()),
        )  # fmt: skip
        return str(await self._run(call))

    async def send_many(
        self,
        items: Iterable[tuple[str | Address, Any]],
        *,
        priority: int | str = "normal",
        timeout: float = DEFAULT_TIMEOUT,
        window: int = SEND_WINDOW,
        delay: float | None = None,
    ) -> list[str]:
        """Send many notifications, pipelined; every id once all are accepted (`Client.send_many`).

        Raises:
            BatchRejected: some items were not accepted; ``.refused`` says which and why.
            ValueError: a bad priority, window or delay.
        """
        parse_priority(priority)
        batch = Window(window)
        progress = asyncio.Event()
        batch.on_change = progress.set
        options = {
            "priority": priority, "timeout": timeout, "ack_timeout": self.ack_timeout,
            "not_before": not_before_of(delay, None, time.time()),
        }  # fmt: skip
        self._start_reading()
        pending = iter(items)
        try:
            for item in pending:
                call = batch.build(self._calls, item, **options)
                if call is None:
                    continue
                stalled = not await self._put(call.data, self.ack_timeout)
                call.data = b""  # sent: the window keeps its id, not its frame
                while not stalled and batch.full:
                    stalled = not await self._progress(progress)
                if stalled:
                    batch.give_up(self._calls, self.ack_timeout, pending)
                    break
            while batch.unconfirmed and await self._progress(progress):
                pass
        finally:  # also when cancelled: nothing of this call stays in the table
            batch.give_up(self._calls, self.ack_timeout)
        return batch.outcome()

    async def request(
        self,
        target: str | Address,
        payload: Any = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        priority: int | str = "normal",
    ) -> Any:
        """Send a request and return its reply's payload (`Client.request`)."""
        return await self._run(
            self._calls.request(target, payload, timeout=timeout, priority=priority)
        )

    async def status(self, *, timeout: float = 5.0) -> dict[str, Any]:
        """The runtime's status document (`Client.status`)."""
        return dict(await self._run(self._calls.status(self.endpoint, timeout)))

    def events(
        self, *prefixes: str, timeout: float | None = None, endpoint: str | None = None
    ) -> AsyncEventSubscription:
        """Follow the runtime's live events: an async iterator of event dicts (`Client.events`).

        It connects on first use (asking the runtime where it publishes unless
        ``endpoint`` is given), so the errors of `Client.events` come from there.

        Example::

            async with client.events("process.", timeout=30) as events:
                async for event in events:
                    print(event["type"])
        """

        async def where() -> str:
            return endpoint or events_endpoint(await self.status(), self.endpoint)

        return AsyncEventSubscription(where, prefixes, timeout=timeout, curve=self._curve)

    async def cancel(self, message_id: str, *, timeout: float = 5.0) -> bool:
        """Cancel a queued message; False if no level holds it (`Client.cancel`)."""
        return bool(await self._control("cancel", {"id": message_id}, timeout))

    async def pause(self, target: str | Address, *, timeout: float = 5.0) -> None:
        """Pause a daemon (`Client.pause`)."""
        await self._control("pause", {"target": str(Address.parse(target))}, timeout)

    async def resume(self, target: str | Address, *, timeout: float = 5.0) -> None:
        """Resume a paused daemon (`Client.resume`)."""
        await self._control("resume", {"target": str(Address.parse(target))}, timeout)

    async def restart(self, target: str | Address, *, timeout: float = 5.0) -> None:
        """Give a daemon a fresh instance (`Client.restart`)."""
        await self._control("restart", {"target": str(Address.parse(target))}, timeout)

    async def dead_letters(
        self, level: int | None = None, *, limit: int = 100, timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """The newest dead letters, oldest first (`Client.dead_letters`)."""
        return list(await self._control("dead_letters", {"level": level, "limit": limit}, timeout))

    async def replay_dead_letters(
        self, level: int | None = None, ids: list[str] | None = None, *, timeout: float = 5.0
    ) -> dict[str, str]:
        """Send dead letters again; old id to new id (`Client.replay_dead_letters`)."""
        arguments = {"level": level, "ids": ids}
        return dict(await self._control("replay_dead_letters", arguments, timeout))

    async def purge_dead_letters(
        self, level: int | None = None, ids: list[str] | None = None, *, timeout: float = 5.0
    ) -> int:
        """Forget dead letters; how many (`Client.purge_dead_letters`)."""
        arguments = {"level": level, "ids": ids}
        return int(await self._control("purge_dead_letters", arguments, timeout))

    async def _control(self, operation: str, arguments: dict[str, Any], timeout: float) -> Any:
        return await self._run(self._calls.control(operation, arguments, self.endpoint, timeout))

    # -- the socket --------------------------------------------------------------

    async def _run(self, call: Call) -> Any:
        """Send ``call``'s frame and await its answer; its outcome.

        Raises:
            TierdError: the call's error, or `RequestTimeout`.
        """
        self._start_reading()
        settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        call.on_settled = functools.partial(_wake, settled)
        heard = self._calls.heard
        try:
            async with asyncio.timeout(call.timeout):
                await self._socket.send(call.data)
                await settled
        except TimeoutError:
            self._calls.forget(call)
            answers = self._calls.heard > heard or await self._runtime_answers()
            raise self._calls.timed_out(call, self.endpoint, runtime_answers=answers) from None
        finally:  # cancelled, timed out or failed: its entry goes; settled: it is gone already
            if not call.done:
                self._calls.forget(call)
        return call.outcome()

    async def _put(self, data: bytes, timeout: float) -> bool:
        """Send one frame, waiting up to ``timeout`` for room; False if none came."""
        try:
            async with asyncio.timeout(timeout):
                await self._socket.send(data)
        except TimeoutError:
            return False
        return True

    async def _progress(self, progress: asyncio.Event) -> bool:
        """Wait up to ``ack_timeout`` for a confirm; False if none came."""
        progress.clear()
        try:
            async with asyncio.timeout(self.ack_timeout):
                await progress.wait()
        except TimeoutError:
            return False
        return True

    async def _runtime_answers(self) -> bool:
        """Whether anything comes back to a ping within `PROBE_TIMEOUT` seconds."""
        ping = self._calls.ping()
        heard = self._calls.heard
        answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        ping.on_settled = functools.partial(_wake, answered)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(PROBE_TIMEOUT):
                await self._socket.send(ping.data)
                await answered
        self._calls.forget(ping)
        return self._calls.heard > heard

    def _start_reading(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        """Feed every frame that arrives to the calls in flight; runs until closed."""
        socket, received = self._socket, self._calls.received
        while True:
            try:
                frames = [await socket.recv()]
                # Then what else is there, without a wait: a non-blocking recv is
                # answered at once, and costs no trip through the event loop.
                while len(frames) < _READ_BATCH:
                    frames.append(socket.recv(zmq.DONTWAIT).result())  # type: ignore[attr-defined] # a Future
            except zmq.Again:
                pass
            except zmq.ZMQError:  # the socket was closed
                return
            for data in frames:
                try:
                    received(data)
                except Exception:  # noqa: BLE001 - one odd frame must not stall every call
                    _log.exception("async_client_frame_failed")


def _wake(future: asyncio.Future[None], _call: Call) -> None:
    """Wake the task awaiting a call's answer; a cancelled wait stays cancelled."""
    if not future.done():
        future.set_result(None)


class AsyncEventSubscription:
    """Live events of a runtime, as an async iterator of event dicts (`AsyncClient.events`).

    Each step waits up to ``timeout`` seconds (None: for ever) and ends the
    iteration if no event came; see `tierd.messaging._transport.client.EventSubscription`.
    """

    def __init__(
        self,
        endpoint: Callable[[], Awaitable[str]],
        prefixes: tuple[str, ...] = (),
        *,
        timeout: float | None = None,
        curve: Curve | None = None,
    ) -> None:
        if timeout is not None:
            check_timeout(timeout, "timeout")
        subscription_prefixes(prefixes)  # refused now, not at the first event
        self.endpoint = ""
        """The events endpoint, once connected."""
        self.timeout = timeout
        self.rejected = 0
        """Frames that were not an event (malformed, oversized...), skipped."""
        self._where = endpoint
        self._prefixes = prefixes
        self._curve = curve
        self._context: zmq.asyncio.Context | None = None
        self._socket: zmq.asyncio.Socket | None = None
        self._closed = False

    async def _connected(self) -> zmq.asyncio.Socket:
        if self._socket is None:
            if self._closed:
                raise RuntimeError("this event subscription is closed")
            endpoint = await self._where()
            self._context = zmq.asyncio.Context()
            self._socket = self._context.socket(zmq.SUB)
            self.endpoint = endpoint
            connect_subscriber(self._socket, endpoint, self._prefixes, self._curve)
        return self._socket

    def __aiter__(self) -> AsyncEventSubscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        event = await self.receive(self.timeout)
        if event is None:
            raise StopAsyncIteration
        return event

    async def receive(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next event, or None if none came within ``timeout`` seconds (None: wait)."""
        socket = await self._connected()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    event = decode_event(await socket.recv_multipart())
                    if event is not None:
                        return event
                    self.rejected += 1
        except TimeoutError:
            return None

    async def __aenter__(self) -> AsyncEventSubscription:
        await self._connected()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop following; closing twice does nothing."""
        self._closed = True
        if self._socket is not None and not self._socket.closed:
            self._socket.close(linger=0)
        if self._context is not None and not self._context.closed:
            self._context.term()
