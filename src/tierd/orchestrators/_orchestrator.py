"""`Orchestrator`: the Pykka actor that owns one level and keeps its time.

The orchestrator starts its level's daemons, sweeps the level's deadlines on
every tick of the runtime's sweeper (expired requests, expired queued
messages, due restarts), and fails what is left and stops the daemons when
the runtime stops. The hand-over of messages to daemons happens in `Level`,
in the thread that submits a message or frees a daemon.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..actors._base import TierdActor

if TYPE_CHECKING:
    from ._level import Level


class Sweep:
    """Told to an orchestrator on every tick of the runtime's sweeper."""

    __slots__ = ()


SWEEP = Sweep()


class Orchestrator(TierdActor):
    """The actor of one level.

    Args:
        level: the level it owns.
    """

    def __init__(self, level: Level) -> None:
        super().__init__()
        self.level = level
        self.log = level.log

    def on_start(self) -> None:
        """Start the level's daemons; runs in the orchestrator's thread."""
        self.level.start_daemons()

    def on_receive(self, message: Any) -> None:
        """Sweep on a `Sweep`; a bug here is logged, never allowed to stop the level."""
        if isinstance(message, Sweep):
            try:
                self.level.sweep()
            except Exception:
                self.log.exception("sweep_failed")
        else:
            self.log.error("unknown_command", command=type(message).__name__)

    def on_stop(self) -> None:
        """Fail what is left in the level and stop its daemons."""
        self.level.fail_everything("runtime stopped before the message was handled")
        self.level.stop_daemons()
