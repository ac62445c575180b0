"""The public test helpers: the fake clock."""

from __future__ import annotations

import pytest

from tierd.testing import FakeClock


def test_the_fake_clock_moves_only_when_advanced():
    """Both readings stand still until `advance`, then move together."""
    clock = FakeClock(monotonic=5.0, wall=100.0)
    assert (clock.monotonic(), clock.time()) == (5.0, 100.0)
    clock.advance(2.5)
    assert (clock.monotonic(), clock.time()) == (7.5, 102.5)
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(-1)
