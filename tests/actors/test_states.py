"""The daemon state table: what may follow what."""

from __future__ import annotations

import itertools

import pytest

from tierd.actors.states import DaemonState, IllegalTransition, check_transition


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (DaemonState.IDLE, DaemonState.BLOCKED),
        (DaemonState.BLOCKED, DaemonState.IDLE),
        (DaemonState.BLOCKED, DaemonState.ERROR),
        (DaemonState.ERROR, DaemonState.WORKING),
        (DaemonState.IDLE, DaemonState.IDLE),
    ],
)
def test_illegal_transitions_raise(current, new):
    """A transition outside the table raises IllegalTransition."""
    with pytest.raises(IllegalTransition, match=f"{current.name} -> {new.name}"):
        check_transition(current, new)


def test_legal_transitions_pass():
    """The lifecycle IDLE, WORKING, BLOCKED, WORKING, ERROR, IDLE is allowed."""
    path = [
        DaemonState.IDLE,
        DaemonState.WORKING,
        DaemonState.BLOCKED,
        DaemonState.WORKING,
        DaemonState.ERROR,
        DaemonState.IDLE,
    ]
    for current, new in itertools.pairwise(path):
        check_transition(current, new)
