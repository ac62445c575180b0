"""The wait-for graph of one runtime: who is blocked waiting on whom.

Every orchestrator of the runtime shares one graph, so a cycle through
several levels in one process is seen the moment the request that would close
it is made. Cycles that span runtimes are caught by the request's
``wait_chain`` instead (see `Daemon.request`).
"""

from __future__ import annotations

import threading


class WaitForGraph:
    """Edges "daemon A waits for a reply from B"; thread-safe."""

    def __init__(self) -> None:
        self._waits_for: dict[str, str] = {}
        self._lock = threading.Lock()

    def block(self, waiter: str, target: str) -> list[str] | None:
        """Record that ``waiter`` waits on ``target``, unless that closes a cycle.

        Returns:
            None when the edge was added; otherwise the cycle, starting with
            ``waiter``, and the edge is not added.
        """
        with self._lock:
            path = [waiter]
            node: str | None = target
            while node is not None:
                if node == waiter:
                    return path
                path.append(node)
                if len(path) > len(self._waits_for) + 1:  # defensive: never loop forever
                    break
                node = self._waits_for.get(node)
            self._waits_for[waiter] = target
            return None

    def unblock(self, waiter: str) -> None:
        """Forget what ``waiter`` was waiting on."""
        with self._lock:
            self._waits_for.pop(waiter, None)
