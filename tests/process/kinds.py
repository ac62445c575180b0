"""Process kinds for tests: each records what its steps did in `CALLS`."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import pydantic

import tierd

CALLS: list[tuple[str, Any]] = []
"""``(step, input)`` for every step body that ran, in order, across kinds."""
HOOKS: dict[str, Any] = {}
"""Functions steps call in the middle, set by a test: ``HOOKS[step](ctx)``."""


class Three(tierd.Process):
    """Three trivial steps: add one, double, to text."""

    kind = "three"

    @tierd.step
    def add(self, ctx: tierd.StepContext, data: Any) -> Any:
        CALLS.append(("add", data))
        return data + 1

    @tierd.step(timeout=10)
    def double(self, ctx: tierd.StepContext, data: Any) -> Any:
        CALLS.append(("double", data))
        if "double" in HOOKS:
            HOOKS["double"](ctx)
        return data * 2

    @tierd.step
    def text(self, ctx: tierd.StepContext, data: Any) -> Any:
        CALLS.append(("text", data))
        return f"={data}"


class Flaky(tierd.Process):
    """One step that raises ConnectionError while ``HOOKS['failures']`` > 0."""

    kind = "flaky"

    @tierd.step(retry=tierd.Retry(max_attempts=3, initial_delay=5, multiplier=2, on=["OSError"]))
    def fetch(self, ctx: tierd.StepContext, data: Any) -> Any:
        CALLS.append(("fetch", ctx.attempt))
        if HOOKS.get("failures", 0) > 0:
            HOOKS["failures"] -= 1
            raise ConnectionError("the far side hung up")
        return "fetched"


class Fatal(tierd.Process):
    """A step that fails on purpose, not recoverable, though it has a retry."""

    @tierd.step(retry=tierd.Retry(max_attempts=5, initial_delay=0))
    def check(self, ctx: tierd.StepContext, data: Any) -> Any:
        raise tierd.StepError("bad_input", "class 123 does not exist", details={"id": 123})


class Undo(tierd.Process):
    """Two steps with compensations, then one that fails."""

    @tierd.step(compensate="undo_first")
    def first(self, ctx: tierd.StepContext, data: Any) -> Any:
        CALLS.append(("first", data))
        return "one"

    @tierd.step(compensate="undo_second")
    def second(self, ctx: tierd.StepContext, data: Any) -> Any:
        CALLS.append(("second", data))
        return "two"

    @tierd.step
    def third(self, ctx: tierd.StepContext, data: Any) -> Any:
        CALLS.append(("third", data))
        if "third" in HOOKS:
            HOOKS["third"](ctx)
            return "three"
        raise RuntimeError("third failed")

    def undo_first(self, ctx: tierd.StepContext, output: Any) -> None:
        CALLS.append(("undo_first", output))

    def undo_second(self, ctx: tierd.StepContext, output: Any) -> None:
        CALLS.append(("undo_second", output))


class Long(tierd.Process):
    """One long step that reports progress, checkpoints, and calls ``HOOKS['long']``."""

    timeout = 100

    @tierd.step(heartbeat=30, retry=tierd.Retry(max_attempts=2, initial_delay=0, on=["Exception"]))
    def work(self, ctx: tierd.StepContext, data: Any) -> Any:
        start = (ctx.checkpoint_data or {}).get("done", 0)
        CALLS.append(("work", start))
        for i in range(start, 4):
            ctx.progress((i + 1) / 4, note=f"part {i}")
            ctx.checkpoint({"done": i + 1})
            if "long" in HOOKS:
                HOOKS["long"](ctx, i)
        return "done"


class Params(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    id: int


class Checked(tierd.Process):
    """Params checked by a pydantic model and a validate hook."""

    params_model: ClassVar[type[pydantic.BaseModel]] = Params

    def validate(self, params: Any) -> Any:
        if params["id"] < 0:
            raise ValueError("id must be >= 0")
        return params

    @tierd.step
    def only(self, ctx: tierd.StepContext, data: Any) -> Any:
        return data["id"]


class Greet(tierd.Process):
    """A step that asks a daemon: ``ctx.request`` through the runtime."""

    max_concurrent = 2

    @tierd.step(timeout=5)
    def ask(self, ctx: tierd.StepContext, data: Any) -> Any:
        ctx.log.info("asking", who=data)
        return ctx.request("echo@1", {"hello": data}, timeout=2)

    @tierd.step
    def tell(self, ctx: tierd.StepContext, data: Any) -> Any:
        ctx.notify("recorder@1", data)
        return data


class Nap(tierd.Process):
    """Two steps that take ``params['seconds']`` each in real time, reporting progress."""

    @tierd.step
    def first(self, ctx: tierd.StepContext, data: Any) -> Any:
        return _nap(ctx, data)

    @tierd.step
    def second(self, ctx: tierd.StepContext, data: Any) -> Any:
        return _nap(ctx, data)


def _nap(ctx: tierd.StepContext, data: Any) -> Any:
    import threading

    pause = threading.Event()
    for i in range(10):
        ctx.progress(i / 10, note=f"tick {i}")
        pause.wait(data["seconds"] / 10)  # real time passing, on purpose
    return data


class Logged(tierd.Process):
    """Three steps; each appends ``process step attempt pid`` to ``params['log']`` when done.

    For the kill -9 fault test: one ``write`` per line (O_APPEND), which a kill cannot
    undo; the middle step takes ``params['delay']`` seconds, so that some are mid-step.
    """

    max_concurrent = 20

    @tierd.step
    def one(self, ctx: tierd.StepContext, data: Any) -> Any:
        return _log_step(ctx, data, 0.0)

    @tierd.step
    def two(self, ctx: tierd.StepContext, data: Any) -> Any:
        return _log_step(ctx, data, data["delay"])

    @tierd.step
    def three(self, ctx: tierd.StepContext, data: Any) -> Any:
        return _log_step(ctx, data, 0.0)


def _log_step(ctx: tierd.StepContext, data: Any, delay: float) -> Any:
    import os
    import threading

    if delay:
        threading.Event().wait(delay)  # real work takes real time
    line = f"{ctx.process_id} {ctx.step} {ctx.attempt} {os.getpid()}\n".encode()
    descriptor = os.open(data["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(descriptor, line)
    finally:
        os.close(descriptor)
    return data


class Squares(tierd.Batch):
    """Items ``range(params["count"])``, squared; ``HOOKS["fail"]`` says which fail.

    ``HOOKS["fail"]`` is a set of items that always fail, or a dict of failures
    left per item; ``HOOKS["item"](ctx, item)`` runs first.
    """

    batch_size = 5
    max_concurrent = 3

    def items(self, ctx: tierd.StepContext, params: Any) -> Any:
        for item in range(params["count"]):
            if item == params.get("raise_at"):
                raise LookupError(f"the source broke at {item}")
            yield item

    def process_item(self, ctx: tierd.StepContext, item: Any) -> Any:
        CALLS.append(("item", item))
        if "item" in HOOKS:
            HOOKS["item"](ctx, item)
        fail = HOOKS.get("fail", ())
        if isinstance(fail, dict) and fail.get(item, 0) > 0:
            fail[item] -= 1
            raise ValueError(f"item {item} is bad")
        if isinstance(fail, set) and item in fail:
            raise ValueError(f"item {item} is bad")
        return item * item


class Slow(Squares):
    """Squares with a delay between batches, a retry and an item timeout."""

    batch_size = 4
    max_concurrent = 2
    delay_between_batches = 10.0
    retry_failed_batches = 1
    item_timeout = 30.0


class FailFast(Squares):
    batch_size = 4
    max_concurrent = 2
    fail_policy = "fail_fast"


class Threshold(Squares):
    batch_size = 10
    max_concurrent = 10
    fail_policy = 0.25


class LoggedItems(tierd.Batch):
    """Items that each append one line to a log once done: for the kill -9 test.

    The line is ``<process id> <index> <attempt> <os pid>``, written after the
    item's ``delay`` seconds; the items carry the log's path and the delay.
    Every fiftieth item (7, 57...) then fails with a `tierd.StepError`.
    """

    batch_size = 20
    max_concurrent = 8

    def items(self, ctx: tierd.StepContext, params: Any) -> Any:
        for index in range(params["count"]):
            fail = index % 50 == 7
            yield {"index": index, "log": params["log"], "delay": params["delay"], "fail": fail}

    def process_item(self, ctx: tierd.StepContext, item: Any) -> Any:
        time.sleep(item["delay"])
        with Path(item["log"]).open("a") as log:
            log.write(f"{ctx.process_id} {item['index']} {ctx.attempt} {os.getpid()}\n")
        if item["fail"]:
            raise tierd.StepError("bad_item", f"item {item['index']} is bad on purpose")
        return item["index"]


class Overlap(tierd.Batch):
    """Records how many items run at once (`OVERLAP`); the first three wait for each other."""

    batch_size = 6
    max_concurrent = 3

    def items(self, ctx: tierd.StepContext, params: Any) -> Any:
        return range(params["count"])

    def process_item(self, ctx: tierd.StepContext, item: Any) -> Any:
        with OVERLAP.lock:
            OVERLAP.running += 1
            OVERLAP.most = max(OVERLAP.most, OVERLAP.running)
            if OVERLAP.running >= self.max_concurrent:
                OVERLAP.full.set()
        OVERLAP.full.wait(10)  # bounded: if the limit is never reached, the test's assert says so
        with OVERLAP.lock:
            OVERLAP.running -= 1
        return item


class _Overlaps:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.full = threading.Event()


OVERLAP = _Overlaps()
"""Items of `Overlap` running now, the most at once, and whether the limit was reached."""
HANG = threading.Event()
"""What `Hangs` items wait on; a test sets it when it is done."""


class Hangs(tierd.Batch):
    """Item 1 hangs (until `HANG` is set) past its 0.2 s item_timeout; the others return."""

    batch_size = 3
    max_concurrent = 3
    item_timeout = 0.2

    def items(self, ctx: tierd.StepContext, params: Any) -> Any:
        return range(3)

    def process_item(self, ctx: tierd.StepContext, item: Any) -> Any:
        if item == 1:
            HANG.wait(20)
        return item


class Shared(tierd.Process):
    """Three steps of ``params['seconds']`` real time each: work several runtimes split."""

    max_concurrent = 16

    @tierd.step
    def one(self, ctx: tierd.StepContext, data: Any) -> Any:
        return _sleep(data)

    @tierd.step
    def two(self, ctx: tierd.StepContext, data: Any) -> Any:
        return _sleep(data)

    @tierd.step
    def three(self, ctx: tierd.StepContext, data: Any) -> Any:
        return _sleep(data)


def _sleep(data: Any) -> Any:
    import threading

    threading.Event().wait(data["seconds"])  # real time passing, on purpose
    return data
