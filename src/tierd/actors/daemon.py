"""`Daemon`, the class users subclass, and `DaemonActor`, the Pykka actor that runs one.

A `Daemon` is a plain object: its constructor takes the options from the
config, and `handle` is called for each message in the daemon's own thread.
`DaemonActor` is the `pykka.ThreadingActor` that owns that thread; when a
daemon crashes its level starts a fresh `DaemonActor` with a fresh
`Daemon`, so no state survives a crash.
"""

from __future__ import annotations

import inspect
import time
from typing import TYPE_CHECKING, Any, Final

from .._outcome import Outcome
from ..errors import RequestTimeout, TierdError
from ..logging import get_logger
from ..messaging.link import settle, unwrap_reply
from ..messaging.message import DEFAULT_TIMEOUT, Address, Message, new_id, parse_priority
from .base import TierdActor

if TYPE_CHECKING:
    from ..orchestrators.level import Level

_WAIT_GRACE: Final = 5.0
"""Seconds a blocked daemon waits past its timeout if no sweep answers (a stopped runtime)."""


class Daemon:
    """Base class of every daemon: subclass it and implement `handle`.

    Options from the config's ``options`` table are passed to the
    constructor as keyword arguments. Every hook runs in the daemon's own
    thread, one message at a time.

    Attributes:
        address: where this daemon lives, e.g. ``echo@2``.
        log: a structlog logger bound to the daemon's level and id.
    """

    address: Address
    log: Any
    _host: DaemonActor | None = None

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        """Check the config's options before anything starts; the default fits them to ``__init__``.

        Override it to check values too, and raise ``ValueError`` naming the option.

        Raises:
            TypeError: an option the constructor does not take, or a missing one.
        """
        inspect.signature(cls).bind(**options)

    def handle(self, message: Message) -> Any:
        """Handle one message.

        For a request, the return value is the reply's payload; raising marks
        the daemon ERROR and the requester gets `RemoteError`. For a
        notification the return value is ignored.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement handle()")

    def on_start(self) -> None:
        """Run once in the daemon's thread before its first message."""

    def on_stop(self) -> None:
        """Run once in the daemon's thread when it is stopped or replaced after a crash."""

    @property
    def message(self) -> Message | None:
        """The message being handled, or None outside `handle`."""
        return self._host.current if self._host is not None else None

    def request(
        self,
        target: str | Address,
        payload: Any = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        priority: int | str = "normal",
    ) -> Any:
        """Send a request and wait, BLOCKED, for its reply.

        Call it only from `handle`. The request carries the trace id of the
        message being handled.

        Args:
            target: the recipient, ``"daemon@level"``.
            payload: any msgpack-able value.
            timeout: seconds to wait for the reply.
            priority: a name (critical, high, normal, low, background) or 1..20.

        Returns:
            The reply's payload.

        Raises:
            RequestTimeout: no reply within ``timeout``.
            RemoteError: the recipient's handler raised.
            UnknownRecipient: no daemon answers to ``target``.
            Deadlock: the recipient is (transitively) waiting on this daemon.
            ValueError: a bad address or priority.
            RuntimeError: called outside `handle`.
        """
        host = self._host
        current = host.current if host is not None else None
        if host is None or current is None:
            raise RuntimeError("Daemon.request() may only be called from handle()")
        recipient = Address.parse(target)
        inherited = current.wait_chain if current.kind == "request" else ()
        request = Message.request(
            self.address,
            recipient,
            payload,
            priority=parse_priority(priority),
            timeout=timeout,
            trace_id=current.trace_id,
            wait_chain=(*inherited, str(self.address)),
        )
        waiter: Outcome[Message | TierdError] = Outcome()
        host.level.request(host.daemon_id, host.generation, request, waiter)
        outcome = waiter.wait(timeout + _WAIT_GRACE)
        if outcome is None:
            raise RequestTimeout(request.id, str(recipient), timeout)
        if isinstance(outcome, TierdError):
            raise outcome
        return unwrap_reply(outcome)

    def notify(
        self,
        target: str | Address,
        payload: Any = None,
        *,
        priority: int | str = "normal",
        timeout: float = DEFAULT_TIMEOUT,
    ) -> str:
        """Send a notification and go on at once.

        Returns:
            The notification's message id.

        Raises:
            Rejected: the recipient's level is full (``queue full``); nothing was kept.
            UnknownRecipient: no daemon answers to ``target``.
            ValueError: a bad address or priority.
        """
        host = self._host
        if host is None:
            raise RuntimeError("Daemon.notify() needs a running daemon")
        recipient = Address.parse(target)
        current = host.current
        message = Message(
            id=new_id(), created_at=time.time(), sender=self.address, recipient=recipient,
            kind="notification", priority=parse_priority(priority), payload=payload,
            timeout=timeout, trace_id=current.trace_id if current is not None else "",
        )  # fmt: skip
        settle(host.level.router.check(recipient).submit(message, None))
        return message.id


class DaemonActor(TierdActor):
    """The Pykka actor that runs one `Daemon` instance for its level.

    Its level tells it a message when it is idle; after each message it
    reports to the level, which hands it the next one at once if it has one,
    so a busy daemon goes from message to message in its own thread. After
    its daemon raised it handles nothing more: the level requeues what it had
    prefetched and starts a replacement.
    """

    def __init__(self, daemon: Daemon, address: Address, level: Level, generation: int) -> None:
        super().__init__()
        self.daemon = daemon
        self.daemon_id = address.daemon
        self.level = level
        self.generation = generation
        self.current: Message | None = None
        self._failed = False
        daemon.address = address
        daemon.log = get_logger(
            runtime=level.runtime_name, level=address.level, daemon=address.daemon
        )
        daemon._host = self  # noqa: SLF001 - the host is the daemon's one link to tierd

    def on_start(self) -> None:
        """Run the daemon's ``on_start``; a raise is reported to the level as a crash."""
        try:
            self.daemon.on_start()
        except Exception as error:  # noqa: BLE001 - any crash is the daemon's, reported
            self._failed = True
            self.level.start_failed(self.daemon_id, self.generation, error)

    def on_stop(self) -> None:
        """Run the daemon's ``on_stop``; a raise is logged and otherwise ignored."""
        try:
            self.daemon.on_stop()
        except Exception:
            self.daemon.log.exception("daemon_on_stop_failed")

    def on_receive(self, message: Any) -> None:
        """Handle a message from the level, then every next one it hands back."""
        handle, finished = self.daemon.handle, self.level.finished
        while message is not None and not self._failed:
            self.current = message
            started = time.perf_counter()
            try:
                result = handle(message)
                error = None
            except Exception as raised:  # noqa: BLE001 - a crash in a daemon is reported
                result, error = None, raised
                self._failed = True
            self.current = None
            message = finished(
                self.daemon_id,
                self.generation,
                message.id,
                result,
                error,
                time.perf_counter() - started,
            )
