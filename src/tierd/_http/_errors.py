"""The one mapping from what went wrong to an HTTP status and an error document.

Every error answer of the API is ``{"error": {"type", "message", ...}}``: the
type is the name the `tierd.Client` raises (``ProcessNotFound``,
``Rejected``...), the message says what happened and to what, and the other
fields are the error's attributes as `tierd.errors.to_payload` writes them
for the wire. Bad input is 422 with ``fields``: each one's location and what
is wrong with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from ..errors import (
    Cancelled,
    ConfigError,
    Deadlock,
    ProcessFailed,
    ProcessNotFound,
    Rejected,
    RemoteError,
    RequestTimeout,
    ScheduleNotFound,
    TierdError,
    UnknownRecipient,
    to_payload,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

QUEUE_FULL_RETRY_AFTER: Final = 1
"""Seconds a refused sender is told to wait (``Retry-After``) when a queue is full."""


class ApiError(Exception):
    """An error the HTTP layer itself answers: no token, a role too low, a state conflict.

    Args:
        status: the HTTP status.
        kind: the error's ``type``.
        message: what happened, and what to do.
    """

    def __init__(self, status: int, kind: str, message: str) -> None:
        self.status = status
        self.kind = kind
        self.message = message
        super().__init__(message)


def unauthorized() -> ApiError:
    """The error for a request with no token, or one that is not accepted."""
    return ApiError(
        401, "Unauthorized",
        "this API needs a bearer token: send 'Authorization: Bearer TOKEN' "
        "(one of runtime.http_tokens), or sign in on the dashboard",
    )  # fmt: skip


def forbidden(needed: str) -> ApiError:
    """The error for a token whose role may not do this."""
    return ApiError(
        403, "Forbidden", f"this needs a token with the {needed!r} role; yours has 'send'"
    )


def conflict(error: ValueError) -> ApiError:
    """The error for a control the process's state does not allow (``cannot pause...``)."""
    return ApiError(409, "Conflict", str(error))


def error_response(error: Exception) -> tuple[int, dict[str, Any], dict[str, str]]:
    """The status, the ``{"error": ...}`` document and the headers answering ``error``.

    Args:
        error: what a route raised: a `TierdError`, an `ApiError`, or a
            `ValueError` from checking an argument (422).

    Returns:
        ``(status, document, headers)``; any other exception is a 500 that
        names its type only (the traceback is logged, not sent).
    """
    if isinstance(error, ApiError):
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else {}
        return error.status, _document(error.kind, error.message), headers
    if isinstance(error, TierdError) and not isinstance(error, ConfigError):
        payload = to_payload(error)
        kind, message = payload.pop("error"), payload.pop("text")
        for wire, attribute in _RENAMED.items():  # a RemoteError's own type and text
            if wire in payload:
                payload[attribute] = payload.pop(wire)
        status, headers = _status_of(error)
        return status, _document(kind, message, **payload), headers
    if isinstance(error, ConfigError):  # the runtime lacks what was asked for: no [processes]
        return 404, _document("ConfigError", str(error)), {}
    if isinstance(error, ValueError):
        return 422, _document("ValueError", str(error)), {}
    return 500, _document("InternalError", f"tierd failed: {type(error).__name__}"), {}


def validation_response(problems: Sequence[Any]) -> tuple[int, dict[str, Any]]:
    """The 422 answering a request whose body or query does not fit, naming each field.

    Args:
        problems: pydantic's error dicts (``loc``, ``msg``), as FastAPI hands them.
    """
    fields: list[dict[str, str]] = []
    for problem in problems:
        entry = {"field": _field_of(problem.get("loc", ())), "problem": problem["msg"]}
        if not any(seen["field"] == entry["field"] for seen in fields):  # one per union member
            fields.append(entry)
    message = "; ".join(f"{field['field']}: {field['problem']}" for field in fields)
    return 422, _document("ValidationError", message or "bad request", fields=fields)


_RENAMED: Final = {"type": "error_type", "message": "error_text"}
"""Wire payload keys that would clash with the document's own, and the attribute names used."""

_TYPE_TAGS: Final = frozenset({"int", "str", "float", "bool", "none", "list", "dict"})
"""Parts of a location that name a union's member, not a field (``priority.int``)."""


def _field_of(location: Sequence[Any]) -> str:
    """``('body', 'priority', 'int')`` -> ``body.priority``: the field, without type tags."""
    parts = [
        str(part) for part in location
        if not (isinstance(part, str) and (part in _TYPE_TAGS or "[" in part))
    ]  # fmt: skip
    return ".".join(parts)


def _status_of(error: TierdError) -> tuple[int, dict[str, str]]:  # noqa: PLR0911 - one per type
    match error:
        case ProcessNotFound() | UnknownRecipient() | ScheduleNotFound():
            return 404, {}
        case Rejected() if error.reason.startswith("queue full"):
            return 429, {"Retry-After": str(QUEUE_FULL_RETRY_AFTER)}
        case Rejected():
            return 503, {}
        case RequestTimeout():
            return 504, {}
        case RemoteError():
            return 502, {}
        case Deadlock() | Cancelled() | ProcessFailed():
            return 409, {}
    return 500, {}


def _document(kind: str, message: str, **details: Any) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, **details}}
