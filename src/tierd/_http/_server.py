"""`HttpServer`: the API and dashboard served by uvicorn in a thread of its own.

The socket is bound in `bind`, in the thread that starts the runtime, so an
address in use fails `Runtime.start` with a `HttpServerError` naming
``runtime.http``; connections made before `start` wait in the listen
backlog. uvicorn then runs the application on its own event loop in a
daemon thread, and `close` ends the live streams, asks uvicorn to exit and
waits for the thread.
"""

from __future__ import annotations

import socket
import threading
from typing import TYPE_CHECKING, Final

import uvicorn

from ..errors import HttpServerError
from ..logging import get_logger
from ._access import Tokens
from ._app import make_app
from ._live import LiveEvents

if TYPE_CHECKING:
    from ..messaging.events import EventFanOut
    from ._served import Served

_BACKLOG: Final = 1024
_GRACE: Final = 2
"""Seconds uvicorn lets open requests finish when the runtime stops."""
_STOP_TIMEOUT: Final = 10.0


class HttpServer:
    """The HTTP API and web dashboard of one runtime.

    Args:
        runtime: what it serves.
        events: the runtime's events, for ``GET /api/events``.

    Raises:
        ConfigError: a ``runtime.http_tokens`` token file cannot be read.
    """

    def __init__(self, runtime: Served, events: EventFanOut) -> None:
        section = runtime.config.runtime
        self.live = LiveEvents(events)
        """The sink of the live streams (on ``events`` only while one is open)."""
        self.tokens = Tokens(section.http_tokens)
        self.app = make_app(runtime, self.tokens, self.live)
        self.address = ""
        """Where it listens, ``host:port``; empty until `bind`."""
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._log = get_logger(runtime=section.name)

    def bind(self, address: str) -> None:
        """Listen on ``host:port`` (port 0 picks a free one; `address` tells which).

        Raises:
            HttpServerError: the address cannot be bound; nothing is left open.
        """
        host, _, port = address.rpartition(":")
        host = host.strip("[]")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # Accepted connections inherit it: a response's head and body go out at once,
            # not 40 ms apart (Nagle waiting on the client's delayed ACK).
            listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            listener.bind((host, int(port)))
            listener.listen(_BACKLOG)
        except OSError as error:
            listener.close()
            raise HttpServerError(address, error.strerror or str(error)) from error
        bound_host, bound_port = listener.getsockname()[:2]
        self.address = (
            f"[{bound_host}]:{bound_port}"
            if family == socket.AF_INET6
            else (f"{bound_host}:{bound_port}")
        )
        self._socket = listener

    def start(self) -> None:
        """Serve in a daemon thread; the socket must be bound."""
        assert self._socket is not None, "bind first"
        config = uvicorn.Config(
            self.app, log_config=None, log_level="warning", access_log=False, lifespan="off",
            timeout_graceful_shutdown=_GRACE, server_header=False,
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, args=([self._socket],), name=f"tierd-http-{self.address}",
            daemon=True,
        )  # fmt: skip
        self._thread.start()
        self._log.info("http_serving", address=self.address, tokens=self.tokens.required)

    def close(self) -> None:
        """End the live streams, stop serving and wait for the thread; safe to call twice."""
        self.live.shutdown()
        server, thread, listener = self._server, self._thread, self._socket
        self._server = self._thread = self._socket = None
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(_STOP_TIMEOUT)
        if listener is not None:
            listener.close()
        if server is not None:
            self._log.info("http_stopped", address=self.address)
