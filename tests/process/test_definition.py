"""Declaring a process: steps in order, compensations, kinds, checks of params."""

from __future__ import annotations

from typing import Any

import pytest

import tierd
from tests.process import kinds
from tierd.processes._definition import request_steps


def test_steps_come_in_the_order_written_and_a_base_class_first():
    """A subclass adds its steps after its base's; the kind defaults to snake_case."""

    class ImportClass(kinds.Three):
        kind = ""

        @tierd.step
        def extra(self, ctx: tierd.StepContext, data: Any) -> Any:
            return data

    definition = ImportClass.definition()
    assert definition.kind == "import_class"
    assert definition.step_names == ["add", "double", "text", "extra"]
    assert definition.steps[1].timeout == 10


def test_a_class_without_steps_or_with_a_missing_compensation_is_refused():
    """TypeError that says what to do."""

    class Empty(tierd.Process):
        pass

    with pytest.raises(TypeError, match=r"has no steps: mark methods with @tierd\.step"):
        Empty.definition()

    class Broken(tierd.Process):
        @tierd.step(compensate="nope")
        def one(self, ctx: tierd.StepContext, data: Any) -> Any:
            return data

    with pytest.raises(TypeError, match=r"compensate='nope' names no method"):
        Broken.definition()


def test_a_step_timeout_must_be_positive():
    """At decoration time."""
    with pytest.raises(ValueError, match="step timeout must be a positive number"):
        tierd.step(timeout=0)


def test_request_steps_make_a_kind_whose_steps_ask_daemons():
    """Each step keeps its name, timeout and retry."""
    retry = tierd.Retry(on=["RateLimited"])
    definition = request_steps(
        "translate", [("a", "x@1", 5.0, None), ("b", "y@2", 60.0, retry)], max_concurrent=3
    )
    assert definition.step_names == ["a", "b"]
    assert definition.steps[1].retry is retry
    assert definition.max_concurrent == 3


def test_progress_outside_zero_and_one_is_a_value_error(harness):
    """ctx.progress(1.5) fails the attempt with ValueError."""
    h = harness(kinds.Three)
    kinds.HOOKS["double"] = lambda ctx: ctx.progress(1.5)
    pid = h.runner.submit("three", 1)
    h.run_all()
    error = h.runner.get(pid)["error"]
    assert error["error_type"] == "ValueError"
    assert "between 0 and 1" in error["message"]
