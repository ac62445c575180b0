"""Errors raised by tierd.

The tree::

    TierdError
    ├── ConfigError (ValueError)        a config file or value is wrong
    ├── RequestTimeout (TimeoutError)   no reply within the request's timeout
    ├── RemoteError                     the recipient's handler raised
    ├── UnknownRecipient (LookupError)  no such daemon or level
    ├── Rejected                        the runtime refused the message
    │   └── BatchRejected               some items of a send_many were refused
    ├── Deadlock                        the request would close a wait-for cycle
    ├── Cancelled                       the message was cancelled before handling
    ├── BindError (OSError)             the runtime cannot listen on its endpoint
    ├── MetricsServerError (OSError)    the runtime cannot serve metrics on its address
    ├── HttpServerError (OSError)       the runtime cannot serve its HTTP API on its address
    ├── ProcessNotFound (LookupError)   no process has this id
    ├── ScheduleNotFound (LookupError)  no schedule has this name
    ├── ProcessFailed                   the process ended failed, cancelled or timed out
    └── StepError                       a step failed on purpose (raised by a user's step)

Errors that travel back to a requester as a reply (everything but
`ConfigError`, `BindError`, `MetricsServerError` and `HttpServerError`) are written into the
reply's payload by `to_payload` and raised again on the requester's side by
`from_payload`.
"""

from __future__ import annotations

import dataclasses
from typing import Any


class TierdError(Exception):
    """Base class of every error tierd raises on purpose.

    Attributes:
        via: the daemons an error passed through on its way back to the
            requester, nearest to where it arose first: a `RequestTimeout`
            that ``b@2`` met and that failed ``a@1``'s request too reaches
            the client with ``via == ("b@2", "a@1")``.
    """

    via: tuple[str, ...] = ()


class ConfigError(TierdError, ValueError):
    """A configuration is invalid.

    Attributes:
        problems: one line per problem, each naming the file and the key.
    """

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class RequestTimeout(TierdError, TimeoutError):
    """No reply arrived within the request's timeout.

    Attributes:
        message_id: the id of the request.
        recipient: the address the request was sent to.
        timeout: the timeout in seconds.
    """

    def __init__(self, message_id: str, recipient: str, timeout: float) -> None:
        self.message_id = message_id
        self.recipient = recipient
        self.timeout = timeout
        super().__init__(
            f"request {message_id} to {recipient} got no reply within {timeout:g}s; "
            "raise the timeout or check that the recipient is not stuck"
        )


class RemoteError(TierdError):
    """The recipient's handler raised while handling the request.

    Attributes:
        recipient: the address whose handler raised.
        error_type: the exception's class name, e.g. ``"RuntimeError"``.
        error_text: ``str()`` of the exception.
        attempts: how many times the message was delivered.
    """

    def __init__(self, recipient: str, error_type: str, error_text: str, attempts: int = 1) -> None:
        self.recipient = recipient
        self.error_type = error_type
        self.error_text = error_text
        self.attempts = attempts
        super().__init__(f"{recipient} raised {error_type}: {error_text}")


class UnknownRecipient(TierdError, LookupError):
    """No daemon or level answers to the address.

    Attributes:
        recipient: the address as it was given.
    """

    def __init__(self, recipient: str, reason: str = "") -> None:
        self.recipient = recipient
        detail = f": {reason}" if reason else ""
        super().__init__(f"no recipient {recipient}{detail}")


class Rejected(TierdError):
    """The runtime refused the message (malformed, too large, queue full, stopping).

    Attributes:
        reason: why, in a few words.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclasses.dataclass(frozen=True, slots=True)
class ItemRefusal:
    """One item of a `send_many` that was not accepted."""

    index: int
    """Its position in the items given, from 0."""
    message_id: str
    """The id its message had; resending it with a new call makes a new id."""
    error: TierdError
    """Why: `Rejected` (``"queue full"``...), `UnknownRecipient`, or `RequestTimeout`
    when no confirm came (the runtime may have it)."""


class BatchRejected(Rejected):
    """Some items of a `send_many` were not accepted; every other item was.

    Attributes:
        ids: every item's message id, by index (refused items included).
        refused: the items not accepted, by index: resend exactly these.
    """

    def __init__(self, ids: list[str], refused: list[ItemRefusal]) -> None:
        self.ids = ids
        self.refused = refused
        first = refused[0]
        super().__init__(
            f"{len(refused)} of {len(ids)} messages were not accepted (the first, item "
            f"{first.index}: {first.error}); every other one was: resend the items in .refused"
        )


class Deadlock(TierdError):
    """The request would close a wait-for cycle, so it was failed at once.

    Attributes:
        cycle: the addresses in the cycle, starting with the requester.
    """

    def __init__(self, cycle: list[str]) -> None:
        self.cycle = list(cycle)
        super().__init__("request would deadlock: " + " -> ".join([*self.cycle, self.cycle[0]]))


class Cancelled(TierdError):
    """The message was cancelled before it was handled.

    Attributes:
        message_id: the id of the cancelled message.
    """

    def __init__(self, message_id: str) -> None:
        self.message_id = message_id
        super().__init__(f"message {message_id} was cancelled")


class BindError(TierdError, OSError):
    """The runtime cannot listen on its endpoint.

    Attributes:
        endpoint: the endpoint from ``runtime.endpoint``.
        reason: what the operating system or ZeroMQ said.
    """

    def __init__(self, endpoint: str, reason: str) -> None:
        self.endpoint = endpoint
        self.reason = reason
        super().__init__(
            f"cannot listen on {endpoint}: {reason}; another process (perhaps another "
            "tierd) may be using it: stop that one or choose another runtime.endpoint"
        )


class MetricsServerError(TierdError, OSError):
    """The runtime cannot serve its Prometheus metrics on ``runtime.metrics``.

    Attributes:
        address: the ``host:port`` it tried.
        reason: what the operating system said.
    """

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(
            f"cannot serve metrics on {address}: {reason}; is another tierd running there? "
            'choose another runtime.metrics address, or "" to turn metrics off'
        )


class HttpServerError(TierdError, OSError):
    """The runtime cannot serve its HTTP API and dashboard on ``runtime.http``.

    Attributes:
        address: the ``host:port`` it tried.
        reason: what the operating system said.
    """

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(
            f"cannot serve the HTTP API on runtime.http {address}: {reason}; is another tierd "
            'running there? choose another runtime.http address, or "" to turn it off'
        )


class ProcessNotFound(TierdError, LookupError):
    """No process has this id (it was never submitted, or it was pruned).

    Attributes:
        process_id: the id as it was given.
    """

    def __init__(self, process_id: str) -> None:
        self.process_id = process_id
        super().__init__(
            f"no process {process_id}: never submitted, or pruned; "
            "list them with 'tierd process list'"
        )


class ScheduleNotFound(TierdError, LookupError):
    """No schedule has this name in the runtime's config.

    Attributes:
        name: the name as it was given.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"no schedule {name!r} in this runtime's config; list them with 'tierd schedules list'"
        )


class ProcessFailed(TierdError):
    """The process ended without a result: ``failed``, ``cancelled`` or ``timeout``.

    Attributes:
        process_id: the process.
        status: its final status.
        error: its error entry (``error_type``, ``error_code``, ``message``...), or None.
    """

    def __init__(self, process_id: str, status: str, error: dict[str, Any] | None = None) -> None:
        self.process_id = process_id
        self.status = status
        self.error = error
        detail = f": {error.get('error_type')}: {error.get('message')}" if error else ""
        super().__init__(f"process {process_id} ended {status}{detail}")


class StepError(TierdError):
    """Raise in a step to fail it with a code and details; not retried unless recoverable.

    Example::

        raise tierd.StepError("not_found", "class 123 does not exist", details={"id": 123})

    Attributes:
        code: a short machine-readable code, e.g. ``"not_found"``.
        message: what went wrong, for people.
        details: any msgpack-able data.
        recoverable: True lets the step's `tierd.Retry` try it again; False fails it at once.
    """

    def __init__(
        self, code: str, message: str, *, details: Any = None, recoverable: bool = False
    ) -> None:
        self.code = code
        self.message = message
        self.details = details
        self.recoverable = recoverable
        super().__init__(f"{code}: {message}")


def to_payload(error: TierdError) -> dict[str, Any]:
    """Describe an error as a msgpack-able dict, for an error reply."""
    payload: dict[str, Any] = {"error": type(error).__name__, "text": str(error)}
    if error.via:
        payload["via"] = list(error.via)
    match error:
        case RequestTimeout():
            payload.update(
                message_id=error.message_id,
                recipient=error.recipient,
                timeout=error.timeout,
            )
        case RemoteError():
            payload.update(
                recipient=error.recipient,
                type=error.error_type,
                message=error.error_text,
                attempts=error.attempts,
            )
        case UnknownRecipient():
            payload.update(recipient=error.recipient)
        case Rejected():
            payload.update(reason=error.reason)
        case Deadlock():
            payload.update(cycle=error.cycle)
        case Cancelled():
            payload.update(message_id=error.message_id)
        case ProcessNotFound():
            payload.update(process_id=error.process_id)
        case ScheduleNotFound():
            payload.update(name=error.name)
        case ProcessFailed():
            payload.update(process_id=error.process_id, status=error.status, detail=error.error)
        case StepError():
            payload.update(
                code=error.code,
                message=error.message,
                details=error.details,
                recoverable=error.recoverable,
            )
    return payload


def from_payload(payload: Any) -> TierdError:
    """Rebuild the error an error reply describes; unknown shapes become `RemoteError`."""
    if not isinstance(payload, dict):
        return RemoteError("?", "TierdError", repr(payload))
    error = _error_of(payload)
    via = payload.get("via")
    if isinstance(via, list) and all(isinstance(hop, str) for hop in via):
        error.via = tuple(via)
    return error


def _error_of(payload: dict[str, Any]) -> TierdError:  # noqa: PLR0911 - one return per type
    kind = payload.get("error")
    text = str(payload.get("text", ""))
    try:
        match kind:
            case "RequestTimeout":
                return RequestTimeout(
                    str(payload["message_id"]),
                    str(payload["recipient"]),
                    float(payload["timeout"]),
                )
            case "RemoteError":
                return RemoteError(
                    str(payload["recipient"]),
                    str(payload["type"]),
                    str(payload["message"]),
                    int(payload.get("attempts", 1)),
                )
            case "UnknownRecipient":
                error: TierdError = UnknownRecipient(str(payload["recipient"]))
                error.args = (text,)
                return error
            case "Rejected":
                return Rejected(str(payload["reason"]))
            case "Deadlock":
                return Deadlock([str(a) for a in payload["cycle"]])
            case "Cancelled":
                return Cancelled(str(payload["message_id"]))
            case "ProcessNotFound":
                return ProcessNotFound(str(payload["process_id"]))
            case "ScheduleNotFound":
                return ScheduleNotFound(str(payload["name"]))
            case "ProcessFailed":
                detail = payload.get("detail")
                return ProcessFailed(
                    str(payload["process_id"]),
                    str(payload["status"]),
                    detail if isinstance(detail, dict) else None,
                )
            case "StepError":
                return StepError(
                    str(payload["code"]),
                    str(payload["message"]),
                    details=payload.get("details"),
                    recoverable=bool(payload.get("recoverable")),
                )
    except (KeyError, TypeError, ValueError):
        pass
    return RemoteError("?", str(kind), text)
