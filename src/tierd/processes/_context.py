"""`StepContext`: what a step sees of its process while it runs, in the step's thread.

A step reports progress (``ctx.progress``), proves it is alive
(``ctx.heartbeat``), keeps a checkpoint that survives a crash
(``ctx.checkpoint``; ``ctx.checkpoint_data`` on the next attempt), calls
daemons (``ctx.request``, ``ctx.notify``) and logs with its process's ids
bound (``ctx.log``). ``progress`` and ``heartbeat`` are where a step meets
pause and cancel: a cancel raises `tierd.Cancelled` there, a pause or a
timeout ends the attempt there.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import structlog

    from ..messaging.message import Address


class Requester(Protocol):
    """Where a step's requests and notifications go: the runtime's router (a `tierd.Runtime`)."""

    def request(
        self, target: str | Address, payload: Any = None, *, timeout: float = ...,
        priority: int | str = ...,
    ) -> Any:  # fmt: skip
        """Send a request and wait for its reply's payload."""

    def send(
        self, target: str | Address, payload: Any = None, *, priority: int | str = ...,
        timeout: float = ..., wait: bool = ...,
    ) -> str:  # fmt: skip
        """Send a notification; return its id."""


class StepHost(Protocol):
    """What a `StepContext` tells: the runner that owns the process."""

    def step_beat(self, token: object, progress: float | None, note: str | None) -> None:
        """Record a heartbeat (and progress); raise if the attempt must stop here."""

    def step_checkpoint(self, token: object, data: Any) -> None:
        """Keep ``data`` durably as the step's checkpoint; return once it is committed."""

    def step_time_left(self, token: object) -> float | None:
        """Seconds the attempt has left (step or process timeout), None if unbounded."""


class StepContext:
    """The context of one attempt of one step. Made by the runner; steps receive it.

    Attributes:
        process_id: the process.
        kind: its kind.
        step: the step's name.
        attempt: this attempt's number, from 1.
        checkpoint_data: what the last ``checkpoint`` of this step kept (an
            earlier attempt's, after a retry or a restart), or None.
        correlation: ``request_id``, ``user_id``, ``session_id`` and ``trace_id``.
        log: a structlog logger with ``process_id``, ``kind``, ``step``,
            ``attempt`` and the correlation ids bound.
    """

    def __init__(
        self,
        host: StepHost,
        token: object,
        requester: Requester | None,
        *,
        process_id: str,
        kind: str,
        step: str,
        attempt: int,
        checkpoint_data: Any,
        correlation: dict[str, Any],
        log: structlog.stdlib.BoundLogger,
    ) -> None:
        self._host = host
        self._token = token
        self._requester = requester
        self.process_id = process_id
        self.kind = kind
        self.step = step
        self.attempt = attempt
        self.checkpoint_data = checkpoint_data
        self.correlation = dict(correlation)
        self.log = log

    def progress(self, fraction: float, note: str | None = None) -> None:
        """Report how much of the step is done (0..1), with an optional note; a heartbeat too.

        Raises:
            Cancelled: the process was cancelled; let it propagate.
            ValueError: ``fraction`` is not between 0 and 1.
        """
        if not (isinstance(fraction, int | float) and 0.0 <= fraction <= 1.0):
            raise ValueError(f"progress must be between 0 and 1, not {fraction!r}")
        self._host.step_beat(self._token, float(fraction), note)

    def heartbeat(self) -> None:
        """Say the step is alive (within its ``heartbeat`` and ``stuck_after``).

        Raises:
            Cancelled: the process was cancelled; let it propagate.
        """
        self._host.step_beat(self._token, None, None)

    def checkpoint(self, data: Any) -> None:
        """Keep ``data`` durably; a later attempt of this step reads it as ``checkpoint_data``.

        Blocks until the store has committed it (a group commit: about a millisecond).

        Raises:
            TypeError: ``data`` is not msgpack-able.
        """
        self._host.step_checkpoint(self._token, data)
        self.checkpoint_data = data

    def request(
        self,
        target: str,
        payload: Any = None,
        *,
        timeout: float | None = None,
        priority: int | str = "normal",
    ) -> Any:
        """Send a request to a daemon and wait for its reply's payload, as `Runtime.request`.

        The timeout is at most the time the step (or the process) has left.

        Raises:
            RequestTimeout, RemoteError, UnknownRecipient, Rejected, Deadlock: as for
                `tierd.Runtime.request`.
        """
        if self._requester is None:
            raise RuntimeError("this step runs outside a runtime: it cannot call daemons")
        left = self._host.step_time_left(self._token)
        seconds = timeout if timeout is not None else 30.0
        if left is not None:
            seconds = min(seconds, max(left, 0.001))
        if not math.isfinite(seconds) or seconds <= 0:
            raise ValueError(f"a request timeout must be positive seconds, not {timeout!r}")
        return self._requester.request(target, payload, timeout=seconds, priority=priority)

    def notify(self, target: str, payload: Any = None, *, priority: int | str = "normal") -> str:
        """Send a notification to a daemon; return its id once its level has it."""
        if self._requester is None:
            raise RuntimeError("this step runs outside a runtime: it cannot call daemons")
        return self._requester.send(target, payload, priority=priority)
