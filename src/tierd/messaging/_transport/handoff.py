"""The hand-off from any thread to the bridge's I/O thread.

ZeroMQ sockets are not thread-safe, so exactly one thread, the bridge's I/O
thread, touches them. Every other thread (orchestrators, daemons, the
status worker) asks it to do something by putting a call in a `Handoff`:
a lock-free deque of calls, and a socket pair whose read end the I/O
thread polls next to its ZeroMQ sockets. Writing one byte wakes the poller;
the I/O thread then runs every queued call, in order. While a byte is
waiting to be read, further calls write none: under load, many replies share
one wake-up and one pair of system calls.
"""

from __future__ import annotations

import collections
import contextlib
import socket
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable


class Handoff:
    """Calls queued by any thread, run by the one owner thread that polls `fileno`."""

    def __init__(self) -> None:
        self._calls: collections.deque[tuple[Callable[..., Any], tuple[Any, ...]]] = (
            collections.deque()
        )
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)  # noqa: FBT003 - the stdlib's signature
        self._writer.setblocking(False)  # noqa: FBT003
        self._owner: int | None = None
        self._closed = False
        self._signalled = False
        """True from a wake-up byte's write until the owner drains it: one byte is enough."""

    def claim(self) -> None:
        """Make the calling thread the owner; call it first thing in the I/O thread."""
        self._owner = threading.get_ident()

    def in_owner(self) -> bool:
        """Whether the calling thread is the owner (the I/O thread)."""
        return threading.get_ident() == self._owner

    def fileno(self) -> int:
        """The file descriptor the owner polls; readable when calls are waiting."""
        return self._reader.fileno()

    def call_soon(self, function: Callable[..., Any], *args: Any) -> bool:
        """Queue ``function(*args)`` for the owner thread; callable from any thread.

        Returns:
            False if the hand-off is closed (the bridge stopped) and the call was dropped.
        """
        if self._closed:
            return False
        self._calls.append((function, args))  # deque.append is atomic
        if not self._signalled:
            # Set before the write: a caller that sees True knows a byte is on its way.
            self._signalled = True
            # A full socket buffer means the owner is already woken: nothing is lost.
            with contextlib.suppress(BlockingIOError, OSError):
                self._writer.send(b"\0")
        return True

    def wake(self) -> None:
        """Wake the owner without queueing a call; callable from any thread."""
        self.call_soon(_nothing)

    def run_pending(self, readable: bool = True) -> int:  # noqa: FBT001, FBT002 - hot path
        """Run the queued calls in the owner thread; return how many ran.

        ``readable`` says whether `fileno` polled readable: if not, no byte
        is waiting and reading for one would only cost a system call.
        A call that raises is not caught here: the I/O loop decides what to log.
        """
        if readable:
            with contextlib.suppress(BlockingIOError, OSError):
                while self._reader.recv(4096):
                    pass
        # Reset after draining the bytes and before taking the calls: a call
        # queued from now on writes a fresh byte, so none waits unseen.
        self._signalled = False
        ran = 0
        calls = self._calls
        while calls:
            function, args = calls.popleft()
            function(*args)
            ran += 1
        return ran

    def close(self) -> None:
        """Refuse further calls and release the socket pair."""
        self._closed = True
        self._calls.clear()
        self._reader.close()
        self._writer.close()


def _nothing() -> None:
    """The call `Handoff.wake` queues."""
