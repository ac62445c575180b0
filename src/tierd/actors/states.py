"""Daemon states and the table of allowed transitions."""

from __future__ import annotations

import enum
from typing import Final


class DaemonState(enum.Enum):
    """What a daemon is doing, as its orchestrator sees it."""

    IDLE = "idle"
    """Ready for a message."""
    WORKING = "working"
    """Handling a message."""
    BLOCKED = "blocked"
    """Waiting for the reply to its own request."""
    ERROR = "error"
    """Its handler raised; it waits for a restart, or was given up on."""

    # Members are singletons: identity hashing is correct, and C-level fast
    # where Enum's own hashes the name in Python on every table lookup.
    __hash__ = object.__hash__


class IllegalTransition(RuntimeError):
    """A state change the table does not allow: a bug in tierd, never user input."""


_ALLOWED: Final[dict[DaemonState, frozenset[DaemonState]]] = {
    DaemonState.IDLE: frozenset({DaemonState.WORKING, DaemonState.ERROR}),
    DaemonState.WORKING: frozenset({DaemonState.IDLE, DaemonState.BLOCKED, DaemonState.ERROR}),
    DaemonState.BLOCKED: frozenset({DaemonState.WORKING}),
    DaemonState.ERROR: frozenset({DaemonState.IDLE}),
}
"""Who may follow whom. IDLE -> ERROR is a crash in ``on_start`` after a restart."""


def check_transition(current: DaemonState, new: DaemonState) -> None:
    """Raise `IllegalTransition` unless the table allows ``current -> new``."""
    if new not in _ALLOWED[current]:
        raise IllegalTransition(f"daemon state {current.name} -> {new.name} is not allowed")
