"""`TierdActor`: the Pykka thread actor every tierd actor derives from."""

from __future__ import annotations

import queue
from typing import Any

import pykka


class TierdActor(pykka.ThreadingActor):
    """A `pykka.ThreadingActor` with a faster inbox, on a daemon thread.

    Pykka's default inbox is a `queue.Queue`, whose put and get go through a
    Python-level condition variable. `queue.SimpleQueue` is implemented in C
    and does the same job (put, blocking get, empty) several times faster;
    every hand-off between a daemon and its orchestrator goes through one.
    """

    use_daemon_thread = True

    @staticmethod
    def _create_actor_inbox() -> queue.SimpleQueue[Any]:
        return queue.SimpleQueue()
