"""The HTTP API (``/api/...``) and the dashboard's routes, as one FastAPI application.

Every route is a thin shell over what the runtime already does: process
and control operations go through `Runtime.control` (so their arguments
are checked by `tierd._control`, as a Client's are), messages through
`Runtime.send` and `Runtime.request`, the status through `Runtime.status`.
The documents are the same as a `tierd.Client` gets; the errors are mapped
in one place (`tierd._http._errors.error_response`).

The role each route needs is the role of its control operation
(`tierd._control.ROLES`); routes with no control operation need ``send``.
Blocking routes are plain functions, run in the server's thread pool; only
the live stream is a coroutine.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import TYPE_CHECKING, Annotated, Any, Final

from fastapi import Body, Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.responses import StreamingResponse as _StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from .._control import ROLES
from .._durations import parse_duration
from .._version import __version__
from ..config import is_loopback_host
from ..errors import TierdError
from ..logging import get_logger
from ..messaging.message import DEFAULT_TIMEOUT
from ._access import COOKIE, Role, Tokens, allows, bearer
from ._dashboard import Dashboard
from ._errors import (
    ApiError,
    conflict,
    error_response,
    forbidden,
    unauthorized,
    validation_response,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from ._live import LiveEvents
    from ._served import Served

HEARTBEAT: Final = 15.0
"""Seconds between the comment lines that keep an idle live stream (and its proxies) open."""
MAX_TOPICS: Final = 20
"""Topic prefixes one live stream may follow."""
MAX_VIEWERS: Final = 200
"""Live streams a runtime serves at once; one more is refused (503)."""
MAX_REQUEST_TIMEOUT: Final = 300.0
"""The longest ``timeout`` of ``POST /api/requests``: a request holds a server thread."""

_log = get_logger(component="http")

Priority = Annotated[int | str, Field(description="1..20, or a name: critical ... background")]

ProcessId = Annotated[str, Path(min_length=1, max_length=100)]
ScheduleName = Annotated[str, Path(min_length=1, max_length=200)]
DaemonTarget = Annotated[str, Path(min_length=3, max_length=300, description="daemon@level")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubmitBody(_Body):
    """``POST /api/processes``: the process to submit."""

    kind: Annotated[str, Field(min_length=1, max_length=100)]
    """The process kind, one of the config's ``[[processes.kinds]]``."""
    params: Any = None
    """The first step's input."""
    priority: Priority = 10
    """1 (first) .. 20 (last); pending processes start in priority order."""
    key: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    """An idempotency key: an unfinished process of the kind with this key is returned instead."""
    correlation: dict[str, str | None] | None = None
    """``request_id``, ``user_id``, ``session_id``, ``trace_id``: carried in logs and events."""


class MessageBody(_Body):
    """``POST /api/messages``: a notification to send."""

    target: Annotated[str, Field(min_length=1, max_length=300)]
    """The recipient, ``daemon@level``."""
    payload: Any = None
    """Any JSON value."""
    priority: Priority = "normal"
    """A name or 1..20."""
    timeout: Annotated[float, Field(gt=0, le=86400)] = DEFAULT_TIMEOUT
    """Seconds the message may wait for room and in the queue."""
    wait: bool = False
    """If the queue is full, wait up to ``timeout`` for room instead of a 429 at once."""
    delay: Annotated[float, Field(ge=0)] | None = None
    """Hold the message this many seconds before it is queued (a delayed message)."""
    not_before: float | None = None
    """Hold the message until this epoch second; give ``delay`` or this, not both."""


class RequestBody(_Body):
    """``POST /api/requests``: a request whose reply the response carries."""

    target: Annotated[str, Field(min_length=1, max_length=300)]
    """The recipient, ``daemon@level``."""
    payload: Any = None
    """Any JSON value."""
    priority: Priority = "normal"
    """A name or 1..20."""
    timeout: Annotated[float, Field(gt=0, le=MAX_REQUEST_TIMEOUT)] = DEFAULT_TIMEOUT
    """Seconds to wait for the reply: 504 after that."""


class RetryBody(_Body):
    """``POST /api/processes/{id}/retry``: where to start again."""

    from_step: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    """The step to run again with its last input; default: the first unfinished one."""


class LettersBody(_Body):
    """``POST /api/dead-letters/replay`` and ``…/purge``: which letters."""

    level: Annotated[int, Field(ge=1)] | None = None
    """One level; none: every level."""
    ids: Annotated[list[str], Field(max_length=10_000)] | None = None
    """These message ids; none: every letter."""


class _Json(JSONResponse):
    """JSON that also carries what msgpack payloads may hold (bytes, sets) as text."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, default=_plain, separators=(",", ":")).encode()


_NOT_LOOPBACK: Final = (
    "this API has no tokens, so it answers only to a loopback host, not {host!r}: "
    "open it as http://127.0.0.1:PORT/, or configure runtime.http_tokens"
)
_OTHER_ORIGIN: Final = (
    "a request from a page of another origin is refused: send it from the dashboard, "
    "or from a client that sends no Origin"
)
_CSP: Final = b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"


class _Guard:
    """ASGI middleware: what every request must pass, and headers every response gets.

    - A body larger than ``limit`` bytes (``runtime.max_message_bytes``) is
      refused with 413 before a route reads it: by its ``Content-Length``, or
      as it streams in without one.
    - A request that changes something (not GET or HEAD) sent by a page of
      another origin (its ``Origin`` is not this ``Host``) is refused with
      403: another site open in the same browser cannot press the buttons.
    - An open API (no tokens, on loopback) answers only to a loopback
      ``Host``, so that a name made to point at 127.0.0.1 (DNS rebinding)
      does not reach it.
    - ``nosniff`` on every response, a strict CSP on all but the API docs.

    Args:
        app: the application.
        limit: the largest body accepted, in bytes.
        open_api: no token is required.
    """

    def __init__(self, app: ASGIApp, limit: int, *, open_api: bool) -> None:
        self.app = app
        self.limit = limit
        self.open_api = open_api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        strict = not scope["path"].startswith("/api/docs")  # the docs load their own scripts
        headers = dict(scope.get("headers", ()))
        refusal = self._refusal(scope["method"], headers)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise ValueError(self._too_large())  # answered as 422 by the route's handler
            return message

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", ()), (b"x-content-type-options", b"nosniff")]
                if strict:
                    headers.append((b"content-security-policy", _CSP))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, counted, with_headers)

    def _refusal(self, method: str, headers: dict[bytes, bytes]) -> _Json | None:
        length = headers.get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.limit:
            return _Json(_error("PayloadTooLarge", self._too_large()), 413)
        host = headers.get(b"host", b"").decode("latin-1")
        if self.open_api and not is_loopback_host(_host_name(host)):
            return _Json(_error("Forbidden", _NOT_LOOPBACK.format(host=host[:100])), 403)
        origin = headers.get(b"origin")
        unsafe = method not in {"GET", "HEAD"}
        if unsafe and origin is not None and origin.decode("latin-1").partition("://")[2] != host:
            return _Json(_error("Forbidden", _OTHER_ORIGIN), 403)
        return None

    def _too_large(self) -> str:
        return f"the body is over {self.limit} bytes (runtime.max_message_bytes)"


def _host_name(host: str) -> str:
    """``127.0.0.1:8080`` -> ``127.0.0.1``, ``[::1]:8080`` -> ``[::1]``, ``localhost`` as is."""
    if host.endswith("]") or (host.count(":") != 1 and not host.startswith("[")):
        return host
    return host.rpartition(":")[0]


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def make_app(runtime: Served, tokens: Tokens, live: LiveEvents) -> FastAPI:  # noqa: PLR0915
    """The application: every ``/api`` route, the live stream and the dashboard.

    Args:
        runtime: what it serves.
        tokens: the accepted tokens (none: open).
        live: the sink for ``GET /api/events``.
    """
    app = FastAPI(
        title=f"tierd {runtime.config.runtime.name!r}",
        version=__version__,
        description="Processes, messages, status, dead letters and daemon control of a tierd "
        "runtime; live events as Server-Sent Events.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        default_response_class=_Json,
    )
    dashboard = Dashboard(runtime, tokens)

    def role_of(request: Request) -> Role:
        presented = bearer(request.headers.get("authorization")) or request.cookies.get(COOKIE)
        role = tokens.role_of(presented)
        if role is None:
            raise unauthorized()
        return role

    def needs(needed: Role) -> Any:
        def check(request: Request) -> Role:
            role = role_of(request)
            if not allows(role, needed):
                raise forbidden(needed)
            return role

        return Depends(check)

    def op(operation: str) -> Any:
        return needs(ROLES[operation])

    def control(operation: str, **arguments: Any) -> Any:
        return runtime.control(operation, {k: v for k, v in arguments.items() if v is not None})

    def state_control(operation: str, **arguments: Any) -> Any:
        """A control the process's state may refuse: that is a 409, not bad input."""
        try:
            return control(operation, **arguments)
        except TierdError:
            raise
        except ValueError as error:
            raise conflict(error) from None

    async def on_error(request: Request, error: Exception) -> Response:
        status, document, headers = error_response(error)
        if status == 500:
            _log.error("http_route_failed", path=request.url.path, exc_info=error)
        return _Json(document, status_code=status, headers=headers)

    async def on_invalid(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        status, document = validation_response(error.errors())
        return _Json(document, status_code=status)

    async def on_http(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        kind = "NotFound" if error.status_code == 404 else "HTTPError"
        message = (
            f"no route {request.method} {request.url.path}"
            if kind == "NotFound"
            else (str(error.detail))
        )
        return _Json(_error(kind, message), status_code=error.status_code, headers=error.headers)

    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(ApiError, on_error)
    app.add_exception_handler(TierdError, on_error)
    app.add_exception_handler(ValueError, on_error)
    app.add_exception_handler(RequestValidationError, on_invalid)

    app.add_exception_handler(Exception, on_error)  # a bug in a route: 500, the server lives
    section = runtime.config.runtime
    app.add_middleware(_Guard, limit=section.max_message_bytes, open_api=not tokens.required)

    # -- processes -------------------------------------------------------------

    @app.post("/api/processes", status_code=201, dependencies=[op("process_submit")],
              tags=["processes"])  # fmt: skip
    def submit_process(body: SubmitBody) -> _Json:
        """Submit a process; its id (a ``key`` already used by an unfinished one returns that)."""
        process_id = control(
            "process_submit", kind=body.kind, params=body.params, priority=body.priority,
            key=body.key, correlation=body.correlation,
        )  # fmt: skip
        return _Json({"process_id": process_id}, status_code=201)

    @app.get("/api/processes", dependencies=[op("process_list")], tags=["processes"])
    def list_processes(
        status: str | None = None,
        kind: str | None = None,
        since: Annotated[str | None, Query(description="epoch seconds, or an age: 2h, 30m")] = None,
        until: Annotated[str | None, Query(description="epoch seconds, or an age")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        cursor: str | None = None,
    ) -> _Json:
        """Processes newest first: ``{"items": [status...], "cursor": next page or null}``."""
        return _Json(control(
            "process_list", status=status, kind=kind, since=_moment(since, "since"),
            until=_moment(until, "until"), limit=limit, cursor=cursor,
        ))  # fmt: skip

    @app.get("/api/processes/stats", dependencies=[op("process_stats")], tags=["processes"])
    def process_stats(
        kind: str | None = None, window: Annotated[float, Query(gt=0)] = 86400.0
    ) -> _Json:
        """Counts by status, success rate, durations and per-step figures over ``window`` s."""
        return _Json(control("process_stats", kind=kind, window=window))

    @app.get("/api/processes/{process_id}", dependencies=[op("process_get")], tags=["processes"])
    def get_process(process_id: ProcessId) -> _Json:
        """The status document (404 ``ProcessNotFound`` for an unknown id)."""
        return _Json(control("process_get", id=process_id))

    @app.get("/api/processes/{process_id}/history", dependencies=[op("process_history")],
             tags=["processes"])  # fmt: skip
    def process_history(process_id: ProcessId) -> _Json:
        """The process's events, oldest first."""
        return _Json(control("process_history", id=process_id))

    @app.get("/api/processes/{process_id}/items", dependencies=[op("process_items")],
             tags=["processes"])  # fmt: skip
    def process_items(
        process_id: ProcessId,
        status: str | None = None,
        cursor: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> _Json:
        """A batch's items by index: ``{"items": [{index, item, status, ...}], "cursor"}``."""
        return _Json(
            control("process_items", id=process_id, status=status, cursor=cursor, limit=limit)
        )

    @app.get("/api/processes/{process_id}/result", dependencies=[op("process_result")],
             tags=["processes"])  # fmt: skip
    def process_result(process_id: ProcessId) -> _Json:
        """``{"result": ...}`` of a completed process; 409 if it failed or has not finished."""
        return _Json({"result": state_control("process_result", id=process_id)})

    @app.delete("/api/processes/{process_id}", status_code=202,
                dependencies=[op("process_cancel")], tags=["processes"])  # fmt: skip
    def cancel_process(process_id: ProcessId) -> _Json:
        """Cancel: at once if pending or paused, else at the next step boundary or beat."""
        state_control("process_cancel", id=process_id)
        return _Json({"process_id": process_id, "requested": "cancel"}, status_code=202)

    @app.post("/api/processes/{process_id}/pause", status_code=202,
              dependencies=[op("process_pause")], tags=["processes"])  # fmt: skip
    def pause_process(process_id: ProcessId) -> _Json:
        """Pause a running process at its next step boundary."""
        state_control("process_pause", id=process_id)
        return _Json({"process_id": process_id, "requested": "pause"}, status_code=202)

    @app.post("/api/processes/{process_id}/resume", status_code=202,
              dependencies=[op("process_resume")], tags=["processes"])  # fmt: skip
    def resume_process(process_id: ProcessId) -> _Json:
        """Resume a paused process."""
        state_control("process_resume", id=process_id)
        return _Json({"process_id": process_id, "requested": "resume"}, status_code=202)

    @app.post("/api/processes/{process_id}/retry", status_code=202,
              dependencies=[op("process_retry")], tags=["processes"])  # fmt: skip
    def retry_process(
        process_id: ProcessId, body: Annotated[RetryBody | None, Body()] = None
    ) -> _Json:
        """Run a finished process again, from ``from_step`` (default: its first unfinished)."""
        from_step = body.from_step if body is not None else None
        state_control("process_retry", id=process_id, from_step=from_step)
        return _Json(
            {"process_id": process_id, "requested": "retry", "from_step": from_step},
            status_code=202,
        )

    # -- messages, status, dead letters, daemons ---------------------------------

    @app.post("/api/messages", status_code=202, dependencies=[needs("send")], tags=["messages"])
    def send_message(body: MessageBody) -> _Json:
        """Send a notification; its id once its level has it (429 if the queue is full)."""
        message_id = runtime.send(
            body.target, body.payload, priority=body.priority, timeout=body.timeout,
            wait=body.wait, delay=body.delay, not_before=body.not_before,
        )  # fmt: skip
        return _Json({"message_id": message_id}, status_code=202)

    @app.delete("/api/messages/{message_id}", dependencies=[op("cancel")], tags=["messages"])
    def cancel_message(message_id: Annotated[str, Path(min_length=1, max_length=100)]) -> _Json:
        """Cancel a queued message: ``{"cancelled": true}``, or false if no level holds it."""
        return _Json({"cancelled": control("cancel", id=message_id)})

    @app.post("/api/requests", dependencies=[needs("send")], tags=["messages"])
    def send_request(body: RequestBody) -> _Json:
        """Send a request and answer with ``{"reply": payload}`` (504 on timeout)."""
        reply = runtime.request(
            body.target, body.payload, timeout=body.timeout, priority=body.priority
        )
        return _Json({"reply": reply})

    @app.get("/api/status", dependencies=[needs("send")], tags=["runtime"])
    def status() -> _Json:
        """Levels, daemons, states, queue depths and counters: ``tierd status --json``."""
        return _Json(runtime.status())

    @app.get("/api/dead-letters", dependencies=[op("dead_letters")], tags=["dead letters"])
    def dead_letters(
        level: Annotated[int | None, Query(ge=1)] = None,
        limit: Annotated[int, Query(ge=0, le=10_000)] = 100,
    ) -> _Json:
        """The newest dead letters, oldest first, each with its level."""
        return _Json(control("dead_letters", level=level, limit=limit))

    @app.post("/api/dead-letters/replay", dependencies=[op("replay_dead_letters")],
              tags=["dead letters"])  # fmt: skip
    def replay_dead_letters(body: Annotated[LettersBody | None, Body()] = None) -> _Json:
        """Send dead letters again as new messages: ``{"replayed": {old id: new id}}``."""
        body = body or LettersBody()
        return _Json({"replayed": control("replay_dead_letters", level=body.level, ids=body.ids)})

    @app.post("/api/dead-letters/purge", dependencies=[op("purge_dead_letters")],
              tags=["dead letters"])  # fmt: skip
    def purge_dead_letters(body: Annotated[LettersBody | None, Body()] = None) -> _Json:
        """Forget dead letters: ``{"purged": n}``."""
        body = body or LettersBody()
        return _Json({"purged": control("purge_dead_letters", level=body.level, ids=body.ids)})

    @app.post("/api/daemons/{target}/pause", dependencies=[op("pause")], tags=["daemons"])
    def pause_daemon(target: DaemonTarget) -> _Json:
        """Pause a daemon: it gets nothing until resumed."""
        return _Json({"target": target, "paused": control("pause", target=target)})

    @app.post("/api/daemons/{target}/resume", dependencies=[op("resume")], tags=["daemons"])
    def resume_daemon(target: DaemonTarget) -> _Json:
        """Resume a paused daemon."""
        return _Json({"target": target, "resumed": control("resume", target=target)})

    @app.post("/api/daemons/{target}/restart", dependencies=[op("restart")], tags=["daemons"])
    def restart_daemon(target: DaemonTarget) -> _Json:
        """Give a daemon a fresh instance (a given-up one comes back)."""
        return _Json({"target": target, "restarted": control("restart", target=target)})

    # -- schedules -------------------------------------------------------------

    @app.get("/api/schedules", dependencies=[op("schedule_list")], tags=["schedules"])
    def schedules() -> _Json:
        """Every schedule: trigger, timezone, what it fires, next fire, last fire, paused."""
        return _Json(control("schedule_list"))

    @app.post("/api/schedules/{name}/pause", dependencies=[op("schedule_pause")],
              tags=["schedules"])  # fmt: skip
    def pause_schedule(name: ScheduleName) -> _Json:
        """Pause a schedule (kept across restarts): its document."""
        return _Json(control("schedule_pause", name=name))

    @app.post("/api/schedules/{name}/resume", dependencies=[op("schedule_resume")],
              tags=["schedules"])  # fmt: skip
    def resume_schedule(name: ScheduleName) -> _Json:
        """Resume a paused schedule from its next fire on: its document."""
        return _Json(control("schedule_resume", name=name))

    @app.post("/api/schedules/{name}/run-now", dependencies=[op("schedule_run_now")],
              tags=["schedules"])  # fmt: skip
    def run_schedule_now(name: ScheduleName) -> _Json:
        """Fire a schedule once now, even if paused: the fire (outcome, process or message id)."""
        return _Json(control("schedule_run_now", name=name))

    # -- live events -----------------------------------------------------------

    @app.get("/api/events", dependencies=[needs("send")], tags=["events"],
             response_class=_StreamingResponse)  # fmt: skip
    async def events(
        topic: Annotated[list[str] | None, Query(description="topic prefixes; none: all")] = None,
    ) -> _StreamingResponse:
        """Live events as Server-Sent Events: ``id: seq``, ``event: type``, ``data: json``."""
        prefixes = topic or []
        if len(prefixes) > MAX_TOPICS or any(len(prefix) > 300 for prefix in prefixes):
            raise ValueError(
                f"query parameter 'topic': at most {MAX_TOPICS} prefixes of 300 characters"
            )
        if live.viewers >= MAX_VIEWERS:
            raise ApiError(
                503, "Rejected", f"{MAX_VIEWERS} live streams are open: the most a runtime serves"
            )
        viewer = live.open(prefixes)

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield b": tierd live events\n\n"
                while not viewer.closed:
                    text, dropped = await live.next_batch(viewer, HEARTBEAT)
                    if dropped:
                        total = viewer.dropped
                        data = f'{{"dropped":{dropped},"total":{total}}}'
                        yield f"event: dropped\ndata: {data}\n\n".encode()
                    if text:
                        yield text
                    elif text is None:
                        yield b": heartbeat\n\n"
            finally:
                live.close(viewer)

        return _StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    # -- the dashboard ---------------------------------------------------------

    def page_role(request: Request) -> Role | None:
        return tokens.role_of(request.cookies.get(COOKIE))

    def sign_in() -> Response:
        return RedirectResponse("/login", status_code=303)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def overview(request: Request, status: str = "", kind: str = "", q: str = "") -> Response:
        role = page_role(request)
        if role is None:
            return sign_in()
        return HTMLResponse(dashboard.overview(role, status[:40], kind[:100], q[:200]))

    @app.get("/processes/{process_id}", response_class=HTMLResponse, include_in_schema=False)
    def process_page(request: Request, process_id: ProcessId) -> Response:
        role = page_role(request)
        if role is None:
            return sign_in()
        page, status_code = dashboard.process(process_id, role)
        return HTMLResponse(page, status_code=status_code)

    @app.get("/fragments/process/{process_id}", response_class=HTMLResponse,
             include_in_schema=False)  # fmt: skip
    def process_fragment(request: Request, process_id: ProcessId) -> Response:
        role = page_role(request)
        if role is None:
            raise unauthorized()
        page, status_code = dashboard.process(process_id, role, fragment=True)
        return HTMLResponse(page, status_code=status_code)

    @app.get("/fragments/{section}", response_class=HTMLResponse, include_in_schema=False)
    def fragment(
        request: Request, section: str, status: str = "", kind: str = "", q: str = ""
    ) -> Response:
        role = page_role(request)
        if role is None:
            raise unauthorized()
        page = dashboard.fragment(section, role, status=status[:40], kind=kind[:100], q=q[:200])
        if page is None:
            return HTMLResponse("no such section", status_code=404)
        return HTMLResponse(page)

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page() -> Response:
        return HTMLResponse(dashboard.login(""))

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = urllib.parse.parse_qs((await request.body()).decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0].strip()
        if tokens.required and tokens.role_of(token) is None:
            return HTMLResponse(dashboard.login("That token is not accepted."), status_code=401)
        response = RedirectResponse("/", status_code=303)
        if tokens.required:
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
        return response

    @app.post("/logout", include_in_schema=False)
    def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        found = dashboard.static(name)
        if found is None:
            return _Json(_error("NotFound", f"no file {name}"), 404)
        body, media_type = found
        return Response(body, media_type=media_type, headers={"Cache-Control": "max-age=300"})

    return app


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message}}


def _moment(value: str | None, name: str) -> float | None:
    """Epoch seconds from ``since``/``until``: a number, or an age such as ``2h`` (before now)."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return time.time() - parse_duration(value)
    except ValueError:
        raise ValueError(
            f"query parameter {name!r}: {value!r} is neither epoch seconds nor an age like '2h'"
        ) from None
