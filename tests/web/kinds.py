"""Process kinds for the HTTP tests."""

from __future__ import annotations

import threading
import time
from typing import Any

import tierd

RELEASE: dict[str, threading.Event] = {}
"""Events a `Held` step waits on, by the process's ``params["gate"]``."""


class Held(tierd.Process):
    """A step that reports half its progress, then waits for its gate; then a second step."""

    kind = "held"

    @tierd.step(timeout=30)
    def wait(self, ctx: tierd.StepContext, params: Any) -> Any:
        ctx.progress(0.5, note="waiting for the gate")
        gate = RELEASE.setdefault(params["gate"], threading.Event())
        while not gate.wait(0.05):
            ctx.heartbeat()  # where a cancel or a pause is seen
        return params

    @tierd.step
    def finish(self, ctx: tierd.StepContext, params: Any) -> Any:
        return {"done": params["gate"]}


class Paced(tierd.Process):
    """One step of ``parts`` parts, ``pause`` seconds each, reporting progress after each."""

    kind = "paced"

    @tierd.step(timeout=120)
    def work(self, ctx: tierd.StepContext, params: Any) -> Any:
        parts, pause = int(params.get("parts", 10)), float(params.get("pause", 0.2))
        for part in range(parts):
            time.sleep(pause)  # the work itself: a user's step that takes time
            ctx.progress((part + 1) / parts, note=f"part {part + 1} of {parts}")
        return parts


class Broken(tierd.Process):
    """A step that fails on purpose."""

    kind = "broken"

    @tierd.step
    def check(self, ctx: tierd.StepContext, params: Any) -> Any:
        raise tierd.StepError("bad_input", "nothing to check", details={"params": params})


class Items(tierd.Batch):
    """Items 0..count-1 in batches of 4; an item divisible by 3 fails (odd ones are slow)."""

    kind = "items"
    batch_size = 4
    max_concurrent = 2
    retry_failed_batches = 0
    fail_policy = "collect"

    def items(self, ctx: tierd.StepContext, params: Any) -> Any:
        return range(int(params["count"]))

    def process_item(self, ctx: tierd.StepContext, item: Any) -> Any:
        time.sleep(0.01 if item % 2 else 0.0)  # odd items take a moment
        if item % 3 == 0:
            raise ValueError(f"item {item} is a multiple of 3")
        return item * 10
