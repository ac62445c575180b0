"""The lifecycle tables: every allowed transition passes, every other one raises."""

from __future__ import annotations

import itertools

import pytest

from tierd.processes._lifecycle import (
    STATUSES,
    STEP_TRANSITIONS,
    TERMINAL,
    TRANSITIONS,
    IllegalTransition,
    check_transition,
)

STEP_STATUSES = ("pending", "running", "completed", "failed", "skipped")


@pytest.mark.parametrize(("old", "new"), list(itertools.product(STATUSES, STATUSES)))
def test_each_process_transition_is_allowed_exactly_when_the_table_says(old, new):
    """DESIGN §9: pending -> running <-> paused -> completed | failed | cancelled | timeout."""
    if new in TRANSITIONS[old]:
        check_transition(old, new)
    else:
        with pytest.raises(IllegalTransition, match=f"a process cannot go from {old} to {new}"):
            check_transition(old, new)


@pytest.mark.parametrize(("old", "new"), list(itertools.product(STEP_STATUSES, STEP_STATUSES)))
def test_each_step_transition_is_allowed_exactly_when_the_table_says(old, new):
    """A step runs, completes or fails; it may run again after a failure or an interruption."""
    if new in STEP_TRANSITIONS[old]:
        check_transition(old, new, "step")
    else:
        with pytest.raises(IllegalTransition):
            check_transition(old, new, "step")


def test_the_table_is_the_design():
    """The transitions DESIGN §9 names, and retry putting a finished process back to pending."""
    assert TRANSITIONS["pending"] == {"running", "cancelled"}
    assert TRANSITIONS["paused"] >= {"running", "cancelled"}
    assert TRANSITIONS["running"] == {"paused", "completed", "failed", "cancelled", "timeout"}
    assert all(TRANSITIONS[status] == {"pending"} for status in TERMINAL)
