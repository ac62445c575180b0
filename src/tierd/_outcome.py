"""`Outcome`: the one-shot result every hand-off between threads in tierd waits on.

One thread sets it once; any number of threads wait for it (with a timeout)
or hang a callback on it. A reply to a blocked daemon, a durable level's
journal commit and a sender admitted into a full queue are all outcomes.

A lock held from birth and released by `set` is the cheapest way to wake a
waiting thread in CPython (a `threading.Event` is a condition variable in
Python code); a second, short lock orders `set` against `add_done_callback`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")

_UNSET = object()


class Outcome(Generic[T]):
    """A value set once, waited for by others."""

    __slots__ = ("_callbacks", "_guard", "_ready", "_value")

    def __init__(self) -> None:
        self._ready = threading.Lock()
        self._ready.acquire()
        self._guard = threading.Lock()
        self._value: object = _UNSET
        self._callbacks: list[Callable[[T], object]] | None = None

    @classmethod
    def of(cls, value: T) -> Outcome[T]:
        """An outcome that is set already."""
        outcome: Outcome[T] = cls()
        outcome.set(value)
        return outcome

    @property
    def done(self) -> bool:
        """Whether the value is set."""
        return self._value is not _UNSET

    def set(self, value: T) -> bool:
        """Set the value, wake every waiter and run the callbacks in this thread.

        Returns:
            False if a value was set already (the new one is ignored).
        """
        with self._guard:
            if self._value is not _UNSET:
                return False
            self._value = value
            callbacks, self._callbacks = self._callbacks, None
        self._ready.release()
        if callbacks is not None:
            for callback in callbacks:
                callback(value)
        return True

    def wait(self, timeout: float | None = None) -> T | None:
        """Block until the value is set; return it, or None if ``timeout`` passed first.

        Args:
            timeout: seconds to wait; None waits for ever.
        """
        if self._value is _UNSET:
            if not self._ready.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
                return None
            self._ready.release()
        return self._value  # type: ignore[return-value]

    def add_done_callback(self, callback: Callable[[T], object]) -> None:
        """Call ``callback(value)`` once set: in the setter's thread, or now if it is set."""
        with self._guard:
            if self._value is _UNSET:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(callback)
                return
        callback(self._value)  # type: ignore[arg-type]
