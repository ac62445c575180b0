"""`ProcessRecord`: one process's state, and the status document built from it.

The runner keeps a record in memory for each process it runs; a store
rebuilds one from its rows for any other. Both answer with `status_document`,
so the document is the same whichever answers it (DESIGN §9).
"""

from __future__ import annotations

import dataclasses
import os
import time
import traceback
from typing import TYPE_CHECKING, Any, Final

from ..errors import StepError

if TYPE_CHECKING:
    from collections.abc import Mapping

_CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CORRELATION_KEYS: Final = ("request_id", "user_id", "session_id", "trace_id")
"""The correlation ids a process carries, and every log line of it."""


def new_process_id(now: float | None = None) -> str:
    """A ULID: 26 characters, sortable by creation time to the millisecond, 80 random bits."""
    millis = int((time.time() if now is None else now) * 1000)
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def error_entry(error: BaseException, attempt: int, at: float) -> dict[str, Any]:
    """The error entry of DESIGN §9 for an exception raised by attempt ``attempt``."""
    if isinstance(error, StepError):
        return {
            "error_type": "StepError", "error_code": error.code, "message": error.message,
            "details": error.details, "recoverable": error.recoverable,
            "attempt": attempt, "at": at,
        }  # fmt: skip
    frames = traceback.extract_tb(error.__traceback__)[-3:]
    return {
        "error_type": type(error).__name__, "error_code": None, "message": str(error),
        "details": {"where": [f"{f.filename}:{f.lineno} {f.name}" for f in frames]},
        "recoverable": True, "attempt": attempt, "at": at,
    }  # fmt: skip


@dataclasses.dataclass(slots=True)
class StepRecord:
    """One step of one process."""

    name: str
    status: str = "pending"
    progress: float = 0.0
    note: str = ""
    attempts: int = 0
    """Attempts started so far (a re-run after a pause or a crash counts)."""
    errors: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    input: Any = None
    output: Any = None
    checkpoint: Any = None
    started_at: float | None = None
    finished_at: float | None = None
    duration: float | None = None
    """Seconds the completed attempt took."""
    cpu: float | None = None
    """Thread CPU seconds of the completed attempt."""

    def summary(self) -> dict[str, Any]:
        """The step's entry in the status document."""
        return {
            "status": self.status, "progress": self.progress, "note": self.note,
            "duration": self.duration, "cpu": self.cpu, "attempts": self.attempts,
            "errors": list(self.errors), "started_at": self.started_at,
            "finished_at": self.finished_at,
        }  # fmt: skip


@dataclasses.dataclass(slots=True)
class ProcessRecord:
    """One process, as the runner and the store both know it."""

    process_id: str
    kind: str
    params: Any
    steps: dict[str, StepRecord]
    """Every step of the kind, in order."""
    status: str = "pending"
    priority: int = 10
    key: str | None = None
    result: Any = None
    error: dict[str, Any] | None = None
    current_step: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    correlation: dict[str, Any] = dataclasses.field(default_factory=dict)
    seq: int = 0
    """The seq of the last event written for this process."""

    @classmethod
    def new(
        cls,
        process_id: str,
        kind: str,
        step_names: list[str],
        params: Any,
        *,
        priority: int,
        key: str | None,
        correlation: Mapping[str, Any] | None,
        created_at: float,
    ) -> ProcessRecord:
        """A pending process with every step pending."""
        ids = dict.fromkeys(CORRELATION_KEYS) | dict(correlation or {})
        if not ids.get("trace_id"):
            ids["trace_id"] = process_id
        return cls(
            process_id, kind, params, {name: StepRecord(name) for name in step_names},
            priority=priority, key=key, correlation=ids, created_at=created_at,
        )  # fmt: skip

    @property
    def progress(self) -> float:
        """The share of the work done: completed steps, plus the running step's progress."""
        if not self.steps:
            return 0.0
        done = sum(
            1.0 if step.status in {"completed", "skipped"} else step.progress
            for step in self.steps.values()
        )
        return round(done / len(self.steps), 4)

    def status_document(self, estimated_completion: float | None = None) -> dict[str, Any]:
        """The status document of DESIGN §9 (plain data; the same over every interface)."""
        completed = [n for n, s in self.steps.items() if s.status in {"completed", "skipped"}]
        remaining = [n for n, s in self.steps.items() if s.status not in {"completed", "skipped"}]
        return {
            "process_id": self.process_id, "kind": self.kind, "status": self.status,
            "priority": self.priority, "progress": self.progress,
            "current_step": self.current_step, "steps_completed": completed,
            "steps_remaining": remaining,
            "steps": {name: step.summary() for name, step in self.steps.items()},
            "params": self.params, "result": self.result, "error": self.error,
            "created_at": self.created_at, "started_at": self.started_at,
            "finished_at": self.finished_at, "estimated_completion": estimated_completion,
            "correlation": dict(self.correlation), "key": self.key, "seq": self.seq,
        }  # fmt: skip


ITEM_STATUSES: Final = ("pending", "running", "completed", "failed", "skipped")
"""The statuses of a batch's item: ``skipped`` is an item the batch stopped before running."""


@dataclasses.dataclass(slots=True)
class ItemRecord:
    """One item of a batch (`tierd.Batch`), as the runner and the store both know it."""

    index: int
    """Its position in what ``items()`` yielded, from 0; the item's id within its batch."""
    item: Any
    """The item itself, as ``items()`` yielded it (msgpack-able)."""
    status: str = "pending"
    attempts: int = 0
    """Attempts started so far, as written: a re-run after a crash counts, but an attempt
    a crash cut short before its start was written (within a sweep) does not."""
    error: dict[str, Any] | None = None
    """The last attempt's error entry (DESIGN §9's shape), if it failed."""
    result: Any = None
    """What ``process_item`` returned, once completed."""

    def summary(self) -> dict[str, Any]:
        """The item's entry in `ProcessRunner.items`."""
        return {
            "index": self.index, "item": self.item, "status": self.status,
            "attempts": self.attempts, "error": self.error, "result": self.result,
        }  # fmt: skip
