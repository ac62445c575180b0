"""Requests waited on at a level: resolved once, expired at their deadline, drained."""

from __future__ import annotations

from tierd._outcome import Outcome
from tierd.messaging.message import Address, Message
from tierd.orchestrators._correlation import PendingRequests


def _request(timeout: float) -> Message:
    return Message.request(Address("a", 1), Address("b", 1), None, timeout=timeout)


def test_a_resolved_request_no_longer_expires():
    """Resolving takes it out and cancels its deadline; a second resolve finds nothing."""
    pending = PendingRequests()
    request = _request(5.0)
    pending.add(request, Outcome(), "a", now=100.0)
    found = pending.resolve(request.id)
    assert found is not None
    assert found.requester == "a"
    assert pending.resolve(request.id) is None
    assert pending.expired(1e9) == []
    assert len(pending) == 0


def test_requests_expire_at_now_plus_their_timeout():
    """Each request's deadline is its own timeout from when it was added."""
    pending = PendingRequests()
    short, long = _request(1.0), _request(10.0)
    pending.add(short, Outcome(), None, now=0.0)
    pending.add(long, Outcome(), None, now=0.0)
    assert pending.expired(0.99) == []
    assert [p.request for p in pending.expired(1.0)] == [short]
    assert [p.request for p in pending.drain()] == [long]
    assert pending.expired(100.0) == []
