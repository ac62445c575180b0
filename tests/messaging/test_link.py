"""The link contract's helpers: the router's checks and waiting for an acceptance."""

from __future__ import annotations

import pytest

import tierd
from tierd._outcome import Outcome
from tierd.messaging.link import Router, settle
from tierd.messaging.message import Address


class NullLink:
    def submit(self, message, reply_route, *, wait=False):
        return None


def test_the_router_refuses_unknown_levels_and_unknown_local_daemons():
    """A remote level takes any daemon id; a local one only its own."""
    router = Router()
    local, remote = NullLink(), NullLink()
    router.add_local(1, local, frozenset({"echo"}))
    router.add_remote(2, remote)
    assert router.check(Address("echo", 1)) is local
    assert router.check(Address("anything", 2)) is remote
    with pytest.raises(tierd.UnknownRecipient, match="no daemon 'nope'"):
        router.check(Address("nope", 1))
    with pytest.raises(tierd.UnknownRecipient, match="no level 3"):
        router.check(Address("echo", 3))
    assert router.link_for(3) is None


def test_settle_returns_on_acceptance_and_raises_the_refusal():
    """None and an accepted outcome return; a refusal is raised; silence is Rejected."""
    settle(None)
    settle(Outcome.of(None))
    with pytest.raises(tierd.Rejected, match="queue full"):
        settle(Outcome.of(tierd.Rejected("queue full")))
    with pytest.raises(tierd.Rejected, match=r"no confirmation within 0\.01s"):
        settle(Outcome(), timeout=0.01)
