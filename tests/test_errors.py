"""Errors survive the trip through an error reply's payload."""

from __future__ import annotations

import pytest

import tierd
from tierd.errors import from_payload, to_payload


@pytest.mark.parametrize(
    "error",
    [
        tierd.RequestTimeout("id1", "echo@2", 1.5),
        tierd.RemoteError("echo@2", "KeyError", "'x'", attempts=3),
        tierd.UnknownRecipient("ghost@1", "no such daemon"),
        tierd.Rejected("queue full"),
        tierd.Deadlock(["a@1", "b@2"]),
        tierd.Cancelled("id2"),
        tierd.ScheduleNotFound("nightly"),
    ],
)
def test_round_trip(error):
    """to_payload then from_payload gives the same type, text and facts."""
    again = from_payload(to_payload(error))
    assert type(again) is type(error)
    assert str(again) == str(error)
    assert vars(again) == vars(error)


def test_unknown_payload_becomes_remote_error():
    """A payload of no known shape still raises something a caller can catch."""
    assert isinstance(from_payload({"error": "Weird", "text": "?"}), tierd.RemoteError)
    assert isinstance(from_payload("garbage"), tierd.RemoteError)


def test_builtin_bases_for_generic_code():
    """Timeouts are TimeoutErrors, config errors ValueErrors, unknown recipients LookupErrors."""
    assert issubclass(tierd.RequestTimeout, TimeoutError)
    assert issubclass(tierd.ConfigError, ValueError)
    assert issubclass(tierd.UnknownRecipient, LookupError)
    assert all(
        issubclass(e, tierd.TierdError)
        for e in (tierd.RemoteError, tierd.Rejected, tierd.Deadlock, tierd.Cancelled)
    )
