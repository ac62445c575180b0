"""The one-shot outcome: set once, waited for with a timeout, callbacks in either order."""

from __future__ import annotations

import threading

from tierd._outcome import Outcome


def test_the_first_value_wins_and_waiters_see_it():
    """A second `set` is refused; `wait` returns the value at once."""
    outcome: Outcome[int] = Outcome()
    assert not outcome.done
    assert outcome.set(1)
    assert not outcome.set(2)
    assert outcome.done
    assert outcome.wait(0) == 1


def test_wait_times_out_with_none_while_unset():
    """Nothing set: `wait` gives up after its timeout."""
    assert Outcome().wait(0.01) is None


def test_callbacks_run_once_whether_added_before_or_after_the_value():
    """Before: in the setter's thread; after: at once."""
    outcome: Outcome[str] = Outcome()
    seen: list[tuple[str, str]] = []
    outcome.add_done_callback(lambda value: seen.append(("before", value)))
    setter = threading.Thread(target=outcome.set, args=("x",))
    setter.start()
    setter.join(5)
    outcome.add_done_callback(lambda value: seen.append(("after", value)))
    assert seen == [("before", "x"), ("after", "x")]


def test_a_waiting_thread_is_woken_by_set():
    """`wait` with no timeout returns once another thread sets the value."""
    outcome: Outcome[int] = Outcome()
    got: list[int | None] = []
    waiter = threading.Thread(target=lambda: got.append(outcome.wait()))
    waiter.start()
    outcome.set(7)
    waiter.join(5)
    assert got == [7]
    assert Outcome.of(3).wait(0) == 3
