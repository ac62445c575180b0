"""The web dashboard: pages and page fragments rendered on the server from Jinja2 templates.

A page (``/``, ``/processes/{id}``) is whole HTML; each of its live sections
is also served alone under ``/fragments/...``, and the page's small script
(``static/dashboard.js``) fetches a section again when an event or its timer
says it changed, and swaps it in. So every piece of markup is written once,
here, in a template; the script knows no layout. Statuses are words (with a
colour beside), never a colour alone.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import jinja2

from .._status import format_duration
from ..errors import ConfigError, ProcessNotFound

if TYPE_CHECKING:
    from ._access import Role, Tokens
    from ._served import Served

_HERE: Final = Path(__file__).parent
_STATIC_TYPES: Final = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
LIST_LIMIT: Final = 100
"""Processes the overview lists (newest first)."""
FAILED_ITEMS: Final = 50
"""Failed items a batch's page lists (by index)."""
TERMINAL: Final = frozenset({"completed", "failed", "cancelled", "timeout"})


class Dashboard:
    """Renders the dashboard's pages and fragments from what the runtime reports.

    Args:
        runtime: what it shows.
        tokens: whether a sign-in is needed (for the header).
    """

    def __init__(self, runtime: Served, tokens: Tokens) -> None:
        self._runtime = runtime
        self._tokens = tokens
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(_HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters.update(when=_when, took=_took, percent=_percent, to_json=_to_json)
        self._env.globals.update(terminal=TERMINAL, statuses=_STATUSES)
        self._static = {
            path.name: (path.read_bytes(), _STATIC_TYPES[path.suffix])
            for path in (_HERE / "static").iterdir()
            if path.suffix in _STATIC_TYPES
        }

    def static(self, name: str) -> tuple[bytes, str] | None:
        """A static file's bytes and media type; None if there is no such file."""
        return self._static.get(name)

    def login(self, problem: str) -> str:
        """The sign-in page, with ``problem`` if the last token was refused."""
        return self._render("login.html", problem=problem, name=self._name)

    def overview(self, role: Role, status: str = "", kind: str = "", query: str = "") -> str:
        """The front page: levels and daemons, processes, dead letters."""
        return self._render(
            "overview.html", role=role, signed_in=self._tokens.required, name=self._name,
            **self._levels(), **self._processes(status, kind, query), **self._letters(),
            **self._schedules(),
        )  # fmt: skip

    def fragment(self, section: str, role: Role, **filters: str) -> str | None:
        """One live section of the front page alone; None for an unknown section."""
        match section:
            case "levels":
                return self._render("_levels.html", role=role, **self._levels())
            case "processes":
                return self._render(
                    "_processes.html", role=role,
                    **self._processes(filters.get("status", ""), filters.get("kind", ""),
                                      filters.get("q", "")),
                )  # fmt: skip
            case "dead-letters":
                return self._render("_letters.html", role=role, **self._letters())
            case "schedules":
                return self._render("_schedules.html", role=role, **self._schedules())
        return None

    def process(self, process_id: str, role: Role, *, fragment: bool = False) -> tuple[str, int]:
        """A process's page (or its live body alone) and the HTTP status to send it with."""
        try:
            document = self._runtime.control("process_get", {"id": process_id})
            history = self._runtime.control("process_history", {"id": process_id})
        except (ProcessNotFound, ConfigError) as error:
            page = self._render(
                "missing.html", name=self._name, message=str(error), signed_in=self._tokens.required
            )
            return page, 404
        failed_items: list[dict[str, Any]] = []
        if document.get("total_items") is not None and document.get("failed_items"):
            failed_items = self._runtime.control(
                "process_items", {"id": process_id, "status": "failed", "limit": FAILED_ITEMS}
            )["items"]
        template = "_process.html" if fragment else "process.html"
        page = self._render(
            template, role=role, process=document, history=history[-200:],
            failed_items=failed_items,
            steps=list(document["steps"].items()), name=self._name,
            signed_in=self._tokens.required,
        )  # fmt: skip
        return page, 200

    @property
    def _name(self) -> str:
        return self._runtime.config.runtime.name

    def _render(self, template: str, **values: Any) -> str:
        return self._env.get_template(template).render(**values)

    def _levels(self) -> dict[str, Any]:
        return {"status": self._runtime.status(), "uptime": format_duration}

    def _processes(self, status: str, kind: str, query: str) -> dict[str, Any]:
        values: dict[str, Any] = {
            "filters": {"status": status, "kind": kind, "q": query},
            "processes": [], "processes_problem": "", "runs_processes": True,
        }  # fmt: skip
        try:
            if query:
                values["processes"] = self._search(query)
            else:
                arguments = {"status": status or None, "kind": kind or None, "limit": LIST_LIMIT}
                page = self._runtime.control(
                    "process_list", {k: v for k, v in arguments.items() if v is not None}
                )
                values["processes"] = page["items"]
        except ConfigError:
            values["runs_processes"] = False
        except ValueError as error:  # a bad filter: shown beside the form
            values["processes_problem"] = str(error)
        return values

    def _search(self, query: str) -> list[dict[str, Any]]:
        """The process whose id is ``query``, else the newest whose key or id contains it."""
        try:
            return [self._runtime.control("process_get", {"id": query})]
        except ProcessNotFound:
            pass
        page = self._runtime.control("process_list", {"limit": 1000})
        needle = query.lower()
        return [
            item for item in page["items"]
            if needle in item["process_id"].lower() or needle in str(item.get("key") or "").lower()
        ][:LIST_LIMIT]  # fmt: skip

    def _schedules(self) -> dict[str, Any]:
        return {"schedules": self._runtime.control("schedule_list", {})}

    def _letters(self) -> dict[str, Any]:
        return {"letters": self._runtime.control("dead_letters", {"limit": 50})[::-1]}


_STATUSES: Final = ("pending", "running", "paused", "completed", "failed", "cancelled", "timeout")


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "—"
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _took(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.2f}s"
    return format_duration(seconds)


def _percent(fraction: float | None) -> str:
    return f"{round((fraction or 0.0) * 100)}%"


def _to_json(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)[:2000]
