"""Remembering recent message ids, so that a resent message is handled once.

A peer resends what it has not seen acknowledged (after a reconnection, or
when an acknowledgement is late). The receiver keeps the ids it accepted
for a window of time and acknowledges a repeat without handing it on.
Ids are unique per sender only, so the inbound side keys them by
(sender, id): the sender as its connection says (see `SenderId`).
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from collections.abc import Hashable

SenderId: TypeAlias = "tuple[bytes | str, str]"
"""(sender, message id): the sender is a CURVE public key (Z85) or a connection's routing id."""


class RecentIds:
    """Ids (any hashable key) accepted within the last ``window`` seconds, at most ``capacity``.

    Owned by one thread (the bridge's I/O thread); not locked.

    Args:
        window: seconds an id is remembered.
        capacity: the most ids kept; the oldest go first, so memory stays bounded
            even under a flood.
    """

    def __init__(self, window: float, capacity: int = 200_000) -> None:
        self.window = window
        self.capacity = capacity
        self._seen: collections.OrderedDict[Hashable, float] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._seen

    def add(self, message_id: Hashable, now: float) -> None:
        """Remember that ``message_id`` was accepted at monotonic time ``now``."""
        self._seen[message_id] = now
        self._seen.move_to_end(message_id)
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)

    def prune(self, now: float) -> int:
        """Forget ids older than the window; return how many were forgotten."""
        seen = self._seen
        horizon = now - self.window
        forgotten = 0
        while seen:
            oldest, at = next(iter(seen.items()))
            if at >= horizon:
                break
            del seen[oldest]
            forgotten += 1
        return forgotten
