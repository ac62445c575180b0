"""Structured logs with structlog: ``console`` or ``json``, one line per event.

Per-message events (``message_received``, ``message_dispatched`` ...) are
logged at debug level. A level checks once, when it is made, whether its
logger writes debug events (`debug_enabled`) and skips building them when it
does not: even a filtered structlog call costs more than half a microsecond
here, several times per message. Configure logging before starting a runtime.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Final, Literal

import structlog

LogFormat = Literal["console", "json"]
LEVELS: Final = ("debug", "info", "warning", "error", "critical")


def configure(
    log_format: LogFormat = "console", level: str = "info", *, stream: Any = None
) -> None:
    """Set up structlog for this process.

    Args:
        log_format: ``console`` (readable, coloured on a TTY) or ``json``
            (one object per line).
        level: the lowest level written: debug, info, warning, error, critical.
        stream: where lines go; standard error by default.

    Raises:
        ValueError: an unknown format or level.
    """
    if level.lower() not in LEVELS:
        raise ValueError(f"unknown log level {level!r}: use one of {', '.join(LEVELS)}")
    out = stream if stream is not None else sys.stderr
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if log_format == "json":
        processors += [
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(),
        ]
    elif log_format == "console":
        colors = hasattr(out, "isatty") and out.isatty()
        processors.append(structlog.dev.ConsoleRenderer(colors=colors))
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
