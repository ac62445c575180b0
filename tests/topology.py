"""Small builders for config dicts in tests."""

from __future__ import annotations

from typing import Any

from tests import daemons


def level(number: int, *specs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A ``[[levels]]`` table."""
    return {"level": number, "daemons": list(specs), **extra}


def daemon(daemon_id: str, class_name: str, **extra: Any) -> dict[str, Any]:
    """A ``[[levels.daemons]]`` table; a bare class name is a built-in or a test daemon."""
    if ":" not in class_name:
        module = "tests.daemons" if hasattr(daemons, class_name) else "tierd.actors.builtin"
        class_name = f"{module}:{class_name}"
    return {"id": daemon_id, "class": class_name, **extra}
