"""The lifecycle of a process and of a step, as explicit transition tables.

::

    pending ──> running <──> paused
       │           │            │
       │           ├──> completed | failed | timeout
       └──> cancelled <─────────┘  (and running ──> cancelled)

A transition that is not in the table is a bug in tierd, and raises
`IllegalTransition`; a user asking for something the state does not allow
(resume a completed process) gets a `ValueError` from the runner first.
"""

from __future__ import annotations

from typing import Final, Literal

ProcessStatus = Literal[
    "pending", "running", "paused", "completed", "failed", "cancelled", "timeout"
]
StepStatus = Literal["pending", "running", "completed", "failed", "skipped"]

STATUSES: Final[tuple[ProcessStatus, ...]] = (
    "pending", "running", "paused", "completed", "failed", "cancelled", "timeout",
)  # fmt: skip
"""Every process status, in lifecycle order."""
TERMINAL: Final[frozenset[str]] = frozenset({"completed", "failed", "cancelled", "timeout"})
"""Statuses a process never leaves (but `retry` starts it again)."""
UNFINISHED: Final[frozenset[str]] = frozenset({"pending", "running", "paused"})
"""Statuses of a process that still has work to do."""

TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "pending": frozenset({"running", "cancelled"}),
    "running": frozenset({"paused", "completed", "failed", "cancelled", "timeout"}),
    "paused": frozenset({"running", "cancelled", "timeout"}),
    # `retry` of a finished process puts it back in the queue.
    "completed": frozenset({"pending"}),
    "failed": frozenset({"pending"}),
    "cancelled": frozenset({"pending"}),
    "timeout": frozenset({"pending"}),
}
"""The process statuses each status may move to."""

STEP_TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "pending": frozenset({"running", "skipped"}),
    # running -> pending: the attempt was paused or interrupted, and runs again.
    "running": frozenset({"completed", "failed", "pending"}),
    "failed": frozenset({"running", "pending"}),
    "completed": frozenset({"pending"}),  # retry from an earlier step
    "skipped": frozenset({"pending"}),
}
"""The step statuses each step status may move to."""


class IllegalTransition(RuntimeError):
    """A status change that the lifecycle does not allow: a bug in tierd."""


def check_transition(current: str, new: str, what: str = "process") -> None:
    """Raise `IllegalTransition` unless ``current -> new`` is in the table.

    Args:
        current: the status now.
        new: the status wanted.
        what: ``"process"`` or ``"step"``: which table.
    """
    table = TRANSITIONS if what == "process" else STEP_TRANSITIONS
    if new not in table.get(current, frozenset()):
        raise IllegalTransition(f"a {what} cannot go from {current} to {new}")
