"""Structured logs with structlog: ``console`` or ``json``, one line per event.

Per-message events (``message_received``, ``message_dispatched`` ...) are
logged at debug level. A level checks once, when it is made, whether its
logger writes debug events (`debug_enabled`) and skips building them when it
does not: even a filtered structlog call costs more than half a microsecond
here, several times per message. Configure logging before starting a runtime.

Every line carries ``timestamp``, ``level`` (the log level: debug, info...),
``event`` and ``runtime``; lines about a level, a daemon or a message also carry
``tier`` (the level number: code binds it as ``level=``, renamed here so it
does not clash with the log level), ``daemon``, ``message_id`` and ``trace_id``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Final, Literal

import structlog

LogFormat = Literal["console", "json"]
LEVELS: Final = ("debug", "info", "warning", "error", "critical")


def configure(
    log_format: LogFormat = "console",
    level: str = "info",
    *,
    stream: Any = None,
    runtime_name: str | None = None,
) -> None:
    """Set up structlog for this process.

    Args:
        log_format: ``console`` (readable, coloured on a TTY) or ``json``
            (one object per line).
        level: the lowest level written: debug, info, warning, error, critical.
        stream: where lines go; standard error by default.
        runtime_name: written as ``runtime`` on every line that does not bind its
            own, for a process that runs one runtime (``tierd run``).

    Raises:
        ValueError: an unknown format or level.
    """
    if level.lower() not in LEVELS:
        raise ValueError(f"unknown log level {level!r}: use one of {', '.join(LEVELS)}")
    out = stream if stream is not None else sys.stderr
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _tier_level,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if runtime_name is not None:
        processors.insert(0, _DefaultRuntime(runtime_name))
    # Tracebacks without local variables: a handler's locals hold message
    # payloads, which do not belong in logs, and rendering them takes milliseconds.
    if log_format == "json":
        processors += [
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            ),
            structlog.processors.JSONRenderer(),
        ]
    elif log_format == "console":
        colors = hasattr(out, "isatty") and out.isatty()
        processors.append(
            structlog.dev.ConsoleRenderer(
                colors=colors, exception_formatter=structlog.dev.plain_traceback
            )
        )
    else:
        raise ValueError(f"unknown log format {log_format!r}: use 'console' or 'json'")
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


def debug_enabled(logger: Any) -> bool:
    """Whether ``logger`` writes debug events, so a hot path can skip building them."""
    is_enabled_for = getattr(logger, "is_enabled_for", None)
    return True if is_enabled_for is None else bool(is_enabled_for(logging.DEBUG))


def get_logger(**context: Any) -> Any:
    """A logger bound to ``context`` now, so that later calls pay no lookup."""
    return structlog.get_logger().bind(**context)


def _tier_level(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Move a bound ``level`` (a tierd level number) to ``tier``; ``level`` is the log level."""
    if "level" in event_dict:
        event_dict["tier"] = event_dict.pop("level")
    return event_dict


class _DefaultRuntime:
    """Add ``runtime=<name>`` to a line that has none."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, _logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        event_dict.setdefault("runtime", self.name)
        return event_dict
