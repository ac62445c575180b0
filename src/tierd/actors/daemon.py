"""`Daemon`: the class users subclass.

A `Daemon` is a plain object: its constructor takes the options from the
config, and `handle` is called for each message in the daemon's own thread.
What runs it (a Pykka actor, see `tierd.actors._executor`) gives it a small
`DaemonContext` while it runs, and that is all a daemon knows of tierd: the
message being handled, a way to ask, and a way to send.
"""

from __future__ import annotations

import inspect
import time
from typing import Any, Final, Protocol

from .._outcome import Outcome
from ..errors import RequestTimeout, TierdError
from ..logging import get_logger
from ..messaging.link import settle, unwrap_reply
from ..messaging.message import DEFAULT_TIMEOUT, Address, Message, not_before_of, parse_priority

_WAIT_GRACE: Final = 5.0
"""Seconds a blocked daemon waits past its timeout if no sweep answers (a stopped runtime)."""


class DaemonContext(Protocol):
    """What a running daemon gets from whatever runs it."""

    @property
    def current(self) -> Message | None:
        """The message being handled, or None between messages."""

    def request(self, request: Message, waiter: Outcome[Message | TierdError]) -> None:
        """Send ``request`` on the daemon's behalf; its reply or error is set on ``waiter``."""

    def submit(self, message: Message) -> Outcome[TierdError | None] | None:
        """Hand a notification to its recipient's level (see `Link.submit`).

        Raises:
            UnknownRecipient: no daemon answers to its recipient.
            Rejected: the level refused it.
        """


class Daemon:
    """Base class of every daemon: subclass it and implement `handle`.

    Options from the config's ``options`` table are passed to the
    constructor as keyword arguments. Every hook runs in the daemon's own
    thread, one message at a time.

    Attributes:
        address: where this daemon lives, e.g. ``echo@2``.
        log: a structlog logger bound to the runtime, the daemon's level and
            id, and, while `handle` runs, the message's ``message_id`` and
            ``trace_id``.
    """

    address: Address
    _log: Any = None
    _host: DaemonContext | None = None

    @property
    def log(self) -> Any:
        """The daemon's logger; inside `handle`, bound to the message's ids too."""
        base = self._log if self._log is not None else get_logger(daemon=type(self).__name__)
        current = self._host.current if self._host is not None else None
        if current is None:
            return base
        return base.bind(message_id=current.id, trace_id=current.trace_id)

    @log.setter
    def log(self, logger: Any) -> None:
        self._log = logger

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

        For a request, the return value is the reply's payload. Raising fails
        the message: the requester gets `RemoteError` (or, for tierd's own
        errors such as a `RequestTimeout` from `request`, that error with
        this daemon added to its ``via``), and a notification goes to the
        retry policy and the dead letters. The daemon itself resumes with
        its state unless its ``supervision`` restarts or stops it for that
        exception type. For a notification the return value is ignored.
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
        message being handled, and while handling a request it inherits the
        time its caller has left: its timeout is at most what remains of the
        request being handled.

        Args:
            target: the recipient, ``"daemon@level"``.
            payload: any msgpack-able value.
            timeout: seconds to wait for the reply (capped as above).
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
        inherited: tuple[str, ...] = ()
        if current.kind == "request":
            inherited = current.wait_chain
            left = current.created_at + current.timeout - time.time()
            if left <= 0:
                raise RequestTimeout(current.id, str(self.address), current.timeout)
            timeout = min(timeout, left)
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
        host.request(request, waiter)
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
        delay: float | None = None,
    ) -> str:
        """Send a notification and go on at once; with ``delay`` (seconds), delivered no earlier.

        Returns:
            The notification's message id.

        Raises:
            Rejected: the recipient's level is full (``queue full``); nothing was kept.
            UnknownRecipient: no daemon answers to ``target``.
            ValueError: a bad address, priority or delay.
        """
        host = self._host
        if host is None:
            raise RuntimeError("Daemon.notify() needs a running daemon")
        recipient = Address.parse(target)
        current = host.current
        trace_id = current.trace_id if current is not None else ""
        # By position: a path taken once per notification (see `Message`).
        message = Message.notification(
            self.address, recipient, payload, parse_priority(priority), timeout, trace_id,
            None if delay is None else not_before_of(delay, None, time.time()),
        )  # fmt: skip
        accepted = host.submit(message)
        if accepted is not None:  # a durable level's commit: wait for it (None is the usual case)
            settle(accepted)
        return message.id
