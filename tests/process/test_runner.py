"""The runner driven by hand on a fake clock: lifecycle, steps, retries, control, recovery."""

from __future__ import annotations

import pytest

import tierd
from tests.process import kinds
from tests.process.kinds import CALLS, HOOKS


def test_a_process_runs_its_steps_in_order_each_getting_the_last_output(harness):
    """Params -> add -> double -> text; the last output is the result."""
    h = harness(kinds.Three)
    pid = h.runner.submit("three", 1)
    assert h.runner.get(pid)["status"] == "running"  # admitted at once: a free slot
    assert h.run_all() == ["tierd-step-add", "tierd-step-double", "tierd-step-text"]
    status = h.runner.get(pid)
    assert CALLS == [("add", 1), ("double", 2), ("text", 4)]
    assert status["status"] == "completed"
    assert status["result"] == "=4"
    assert status["progress"] == 1.0
    assert status["steps_completed"] == ["add", "double", "text"]
    assert status["steps_remaining"] == []
    assert status["steps"]["add"]["attempts"] == 1
    assert status["current_step"] is None
    assert status["finished_at"] is not None
    assert h.runner.result(pid) == "=4"


def test_the_status_document_has_every_field_of_the_design(harness):
    """DESIGN §9's keys, and the correlation ids given at submit."""
    h = harness(kinds.Three)
    pid = h.runner.submit("three", 1, correlation={"user_id": "u1", "request_id": "r1"})
    status = h.runner.get(pid)
    expected = {
        "process_id", "kind", "status", "priority", "progress", "current_step",
        "steps_completed", "steps_remaining", "steps", "params", "result", "error",
        "created_at", "started_at", "finished_at", "estimated_completion", "correlation", "seq",
    }  # fmt: skip
    assert expected <= set(status)
    assert status["correlation"] == {
        "request_id": "r1", "user_id": "u1", "session_id": None, "trace_id": pid,
    }  # fmt: skip
    assert status["current_step"] == "add"
    assert status["steps"]["add"]["status"] == "running"


def test_history_lists_every_transition_with_a_seq_rising_by_one(harness):
    """submitted, started, then each step's start and completion, then completed."""
    h = harness(kinds.Three)
    pid = h.runner.submit("three", 1)
    h.run_all()
    events = h.runner.history(pid)
    assert [e["type"] for e in events] == [
        "process_submitted", "process_started",
        "step_started", "step_completed", "step_started", "step_completed",
        "step_started", "step_completed", "process_completed",
    ]  # fmt: skip
    assert [e["seq"] for e in events] == list(range(1, 10))
    assert h.runner.get(pid)["seq"] == 9


def test_an_unknown_id_is_process_not_found_everywhere(harness):
    """get, history, wait, cancel, pause, resume, retry: never a fake pending."""
    h = harness(kinds.Three)
    for call in (
        h.runner.get, h.runner.history, h.runner.cancel, h.runner.pause, h.runner.resume,
        h.runner.retry, h.runner.result, lambda pid: h.runner.wait(pid, 0),
    ):  # fmt: skip
        with pytest.raises(tierd.ProcessNotFound, match="no process nope"):
            call("nope")


def test_an_unknown_kind_and_refused_params_store_nothing(harness):
    """ValueError naming the problem; no row is written."""
    h = harness(kinds.Three, kinds.Checked)
    with pytest.raises(ValueError, match="unknown process kind 'nope'; this runtime runs: checked"):
        h.runner.submit("nope", 1)
    with pytest.raises(ValueError, match=r"params.id: Input should be a valid integer"):
        h.runner.submit("checked", {"id": "12"})
    with pytest.raises(ValueError, match="id must be >= 0"):
        h.runner.submit("checked", {"id": -1})
    with pytest.raises(ValueError, match="not storable"):
        h.runner.submit("three", object())
    assert h.runner.list()["items"] == []


def test_a_key_already_used_by_an_unfinished_process_returns_that_process(harness):
    """Idempotent submit; once it has finished, the key may be used again."""
    h = harness(kinds.Three)
    first = h.runner.submit("three", 1, key="k")
    assert h.runner.submit("three", 2, key="k") == first
    h.run_all()
    second = h.runner.submit("three", 3, key="k")
    assert second != first


def test_pending_processes_start_by_priority_then_submit_order_within_max_concurrent(harness):
    """max_concurrent 2: two run, the rest wait, the most urgent first."""
    h = harness(kinds.Three.definition().replace(max_concurrent=2))
    ids = [h.runner.submit("three", i, priority=p) for i, p in enumerate([10, 10, 15, 5, 5])]
    statuses = [h.runner.get(pid)["status"] for pid in ids]
    assert statuses == ["running", "running", "pending", "pending", "pending"]
    started = []
    while h.executor.jobs:
        name = h.executor.run_next()
        if name == "tierd-step-add":
            started.append(CALLS[-1][1])
    assert started == [0, 1, 3, 4, 2]


def test_a_retryable_error_waits_its_backoff_on_the_clock_then_runs_again(harness):
    """ConnectionError (an OSError) is retried after 5 s, then 10 s; attempts counted."""
    h = harness(kinds.Flaky)
    HOOKS["failures"] = 2
    pid = h.runner.submit("flaky")
    h.run_all()
    status = h.runner.get(pid)
    assert status["status"] == "running"
    assert status["steps"]["fetch"]["status"] == "failed"
    h.advance(4.9)
    assert not h.executor.jobs  # not yet
    h.advance(0.1)
    h.run_all()
    h.advance(9.9)
    assert not h.executor.jobs
    h.advance(0.1)
    h.run_all()
    status = h.runner.get(pid)
    assert status["status"] == "completed"
    assert CALLS == [("fetch", 1), ("fetch", 2), ("fetch", 3)]
    errors = status["steps"]["fetch"]["errors"]
    assert [e["error_type"] for e in errors] == ["ConnectionError", "ConnectionError"]
    assert [e["attempt"] for e in errors] == [1, 2]
    types = [e["type"] for e in h.runner.history(pid)]
    assert types.count("step_retrying") == 2
    assert h.runner.statistics().step_retries == {("flaky", "fetch"): 2}


def test_retries_exhausted_fail_the_process_with_the_last_error(harness):
    """max_attempts 3: the third failure fails the process."""
    h = harness(kinds.Flaky)
    HOOKS["failures"] = 5
    pid = h.runner.submit("flaky")
    for _ in range(3):
        h.run_all()
        h.advance(60)
    status = h.runner.get(pid)
    assert status["status"] == "failed"
    assert status["error"]["error_type"] == "ConnectionError"
    assert status["error"]["attempt"] == 3
    with pytest.raises(tierd.ProcessFailed, match="ended failed: ConnectionError"):
        h.runner.result(pid)


def test_a_step_error_is_not_retried_and_carries_its_code_and_details(harness):
    """StepError(recoverable=False) fails at once, whatever the retry says."""
    h = harness(kinds.Fatal)
    pid = h.runner.submit("fatal")
    h.run_all()
    error = h.runner.get(pid)["error"]
    assert error["error_type"] == "StepError"
    assert error["error_code"] == "bad_input"
    assert error["details"] == {"id": 123}
    assert error["recoverable"] is False
    assert h.runner.get(pid)["steps"]["check"]["attempts"] == 1


def test_compensations_of_completed_steps_run_in_reverse_order_when_it_fails(harness):
    """first, second, third fails -> undo_second, undo_first; each recorded."""
    h = harness(kinds.Undo)
    pid = h.runner.submit("undo", "x")
    h.run_all()
    assert [c[0] for c in CALLS] == ["first", "second", "third", "undo_second", "undo_first"]
    assert CALLS[3:] == [("undo_second", "two"), ("undo_first", "one")]
    status = h.runner.get(pid)
    assert status["status"] == "failed"
    types = [e["type"] for e in h.runner.history(pid)]
    assert types[-5:] == [
        "compensation_started", "compensation_completed",
        "compensation_started", "compensation_completed", "process_failed",
    ]  # fmt: skip


def test_cancel_of_a_pending_process_is_at_once(harness):
    """Pending -> cancelled, and its waiters get the final status."""
    h = harness(kinds.Three.definition().replace(max_concurrent=1))
    h.runner.submit("three", 1)
    pid = h.runner.submit("three", 2)
    assert h.runner.get(pid)["status"] == "pending"
    h.runner.cancel(pid)
    assert h.runner.get(pid)["status"] == "cancelled"
    assert h.runner.wait(pid, 0)["status"] == "cancelled"
    with pytest.raises(ValueError, match=f"cannot cancel process {pid}: it is cancelled"):
        h.runner.cancel(pid)


def test_cancel_of_a_running_process_takes_effect_at_the_next_boundary(harness):
    """The step in hand (second) completes; third does not run; compensations run."""
    h = harness(kinds.Undo)
    pid = h.runner.submit("undo", "x")
    h.executor.run_next()  # first; second is in hand now
    h.runner.cancel(pid)
    assert h.runner.get(pid)["status"] == "running"  # until the boundary
    h.run_all()
    assert [c[0] for c in CALLS] == ["first", "second", "undo_second", "undo_first"]
    status = h.runner.get(pid)
    assert status["status"] == "cancelled"
    assert status["steps"]["third"]["status"] == "skipped"


def test_cancel_inside_a_long_step_raises_cancelled_at_its_next_progress(harness):
    """The step sees tierd.Cancelled at ctx.progress; the process ends cancelled."""
    h = harness(kinds.Long)
    pid = h.runner.submit("long")
    HOOKS["long"] = lambda ctx, i: h.runner.cancel(pid) if i == 1 else None
    h.run_all()
    status = h.runner.get(pid)
    assert status["status"] == "cancelled"
    assert status["steps"]["work"]["errors"][-1]["error_type"] == "Cancelled"
    assert status["steps"]["work"]["status"] == "failed"


def test_pause_at_a_boundary_then_resume_runs_the_next_step(harness):
    """Running -> paused after the step in hand; resume starts the next one."""
    h = harness(kinds.Three)
    pid = h.runner.submit("three", 1)
    h.executor.run_next()  # add
    h.runner.pause(pid)
    h.executor.run_next()  # double: completes, then the pause takes effect
    assert not h.executor.jobs
    assert h.runner.get(pid)["status"] == "paused"
    with pytest.raises(ValueError, match=r"cannot pause process .*: it is paused"):
        h.runner.pause(pid)
    h.runner.resume(pid)
    h.run_all()
    assert h.runner.get(pid)["result"] == "=4"
    types = [e["type"] for e in h.runner.history(pid)]
    assert "process_paused" in types
    assert "process_resumed" in types


def test_pause_inside_a_long_step_stops_it_at_its_progress_and_resume_uses_the_checkpoint(
    harness,
):
    """The attempt ends at ctx.progress; on resume the step starts from its checkpoint."""
    h = harness(kinds.Long)
    pid = h.runner.submit("long")
    HOOKS["long"] = lambda ctx, i: h.runner.pause(pid) if i == 1 and ctx.attempt == 1 else None
    h.run_all()
    status = h.runner.get(pid)
    assert status["status"] == "paused"
    assert status["steps"]["work"]["status"] == "pending"
    h.runner.resume(pid)
    h.run_all()
    assert h.runner.get(pid)["status"] == "completed"
    assert CALLS == [("work", 0), ("work", 2)]


def test_resume_of_a_finished_process_is_refused(harness):
    """A control the state does not allow is a ValueError that says the state."""
    h = harness(kinds.Three)
    pid = h.runner.submit("three", 1)
    h.run_all()
    with pytest.raises(ValueError, match=f"cannot resume process {pid}: it is completed"):
        h.runner.resume(pid)


def test_a_step_over_its_timeout_fails_that_attempt(harness):
    """Double has timeout 10: the sweep at 10 s fails it (no retry: the process fails)."""
    h = harness(kinds.Three)
    pid = h.runner.submit("three", 1)
    h.executor.run_next()  # add; double is queued, and never run
    h.advance(9.9)
    assert h.runner.get(pid)["status"] == "running"
    h.advance(0.1)
    status = h.runner.get(pid)
    assert status["status"] == "failed"
    assert status["error"]["error_type"] == "StepTimeout"
    h.run_all()  # the abandoned attempt runs late: its outcome is ignored
    assert h.runner.get(pid)["status"] == "failed"


def test_a_step_silent_past_its_heartbeat_is_retried_with_its_checkpoint(harness):
    """Heartbeat 30: no beat for 30 s fails the attempt; the retry reads the checkpoint."""
    h = harness(kinds.Long)
    pid = h.runner.submit("long")

    def stall(ctx, i):
        if i == 1 and ctx.attempt == 1:
            h.advance(30)  # time passes with no beat, as if the step hung here
            ctx.heartbeat()  # too late: the attempt was abandoned

    HOOKS["long"] = stall
    h.run_all()
    status = h.runner.get(pid)
    assert status["status"] == "completed"
    assert status["steps"]["work"]["errors"][0]["error_type"] == "HeartbeatLost"
    assert CALLS == [("work", 0), ("work", 2)]


def test_a_stuck_step_is_run_again_after_stuck_after_and_counted(harness):
    """No beat for stuck_after: a new attempt, not a failure; recovered counted."""
    h = harness(kinds.Three, stuck_after=60)
    pid = h.runner.submit("three", 1)
    h.executor.jobs.clear()  # the attempt of add hangs for ever
    h.advance(60)
    status = h.runner.get(pid)
    assert status["steps"]["add"]["attempts"] == 2
    assert status["steps"]["add"]["errors"] == []
    h.run_all()
    assert h.runner.get(pid)["status"] == "completed"
    assert h.runner.statistics().recovered == {"three": 1}


def test_the_process_timeout_ends_it_timeout_and_runs_compensations(harness):
    """Long has timeout 100."""
    h = harness(kinds.Long)
    pid = h.runner.submit("long")
    h.advance(100)
    status = h.runner.get(pid)
    assert status["status"] == "timeout"
    assert status["error"]["error_type"] == "ProcessTimeout"


def test_a_restart_resumes_from_the_last_completed_step(harness):
    """Add and double done, text in hand at the crash: only text runs again, as attempt 2."""
    h = harness(kinds.Three)
    pid = h.runner.submit("three", 1)
    h.executor.run_next()
    h.executor.run_next()
    h.restart()  # the queued attempt of text is lost, as in kill -9
    h.run_all()
    status = h.runner.get(pid)
    assert status["status"] == "completed"
    assert status["result"] == "=4"
    assert CALLS == [("add", 1), ("double", 2), ("text", 4)]
    assert status["steps"]["text"]["attempts"] == 2
    assert status["steps"]["add"]["attempts"] == 1
    assert h.runner.statistics().recovered == {"three": 1}
    assert "process_recovered" in [e["type"] for e in h.runner.history(pid)]


def test_a_restart_keeps_pending_and_paused_processes(harness):
    """Pending ones start after the restart; paused ones stay paused until resumed."""
    h = harness(kinds.Three.definition().replace(max_concurrent=1))
    first = h.runner.submit("three", 1)
    h.executor.run_next()
    h.runner.pause(first)
    h.executor.run_next()
    second = h.runner.submit("three", 2)
    assert h.runner.get(first)["status"] == "paused"
    h.restart()
    assert h.runner.get(first)["status"] == "paused"
    assert h.runner.get(second)["status"] == "pending"  # the paused one keeps the slot
    h.runner.resume(first)
    h.run_all()
    assert h.runner.get(first)["status"] == "completed"
    assert h.runner.get(second)["status"] == "completed"


def test_retry_of_a_failed_process_from_a_named_step(harness):
    """The steps before keep their outputs; the named step runs with its last input."""
    h = harness(kinds.Undo)
    pid = h.runner.submit("undo", "x")
    h.run_all()
    CALLS.clear()
    HOOKS["third"] = lambda ctx: None
    h.runner.retry(pid, from_step="second")
    h.run_all()
    assert CALLS == [("second", "one"), ("third", "two")]
    assert h.runner.get(pid)["status"] == "completed"
    with pytest.raises(ValueError, match="has no step 'nope'"):
        h.runner.retry(pid, from_step="nope")


def test_wait_returns_the_final_status_or_times_out(harness):
    """RequestTimeout while running; the document once finished."""
    h = harness(kinds.Three)
    pid = h.runner.submit("three", 1)
    with pytest.raises(tierd.RequestTimeout):
        h.runner.wait(pid, 0.01)
    h.run_all()
    assert h.runner.wait(pid, 1)["status"] == "completed"


def test_list_filters_and_pages_newest_first(harness):
    """Status and kind filters; a cursor walks every page once."""
    h = harness(kinds.Three, kinds.Fatal)
    ids = [h.runner.submit("three", i) for i in range(5)]
    failed = h.runner.submit("fatal")
    h.run_all()
    page = h.runner.list(limit=2)
    assert [p["process_id"] for p in page["items"]] == [failed, ids[4]]
    seen = []
    cursor = None
    while True:
        page = h.runner.list(kind="three", limit=2, cursor=cursor)
        seen += [p["process_id"] for p in page["items"]]
        cursor = page["cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    assert [p["process_id"] for p in h.runner.list(status="failed")["items"]] == [failed]
    with pytest.raises(ValueError, match="unknown status"):
        h.runner.list(status="nope")


def test_stats_counts_and_durations_and_the_bottleneck_step(harness):
    """Success rate over the window; the slowest step on average is the bottleneck."""
    h = harness(kinds.Three.definition().replace(max_concurrent=1), kinds.Fatal)
    HOOKS["double"] = lambda ctx: h.clock.advance(2.0)
    for i in range(3):
        h.runner.submit("three", i)
    h.runner.submit("fatal")
    h.run_all()
    stats = h.runner.stats()
    assert stats["counts"]["completed"] == 3
    assert stats["counts"]["failed"] == 1
    assert stats["success_rate"] == 0.75
    assert stats["bottleneck"] == "double"
    assert stats["steps"]["double"]["average"] == pytest.approx(2.0)
    assert h.runner.stats(kind="fatal")["success_rate"] == 0.0


def test_prune_deletes_finished_processes_older_than_the_cutoff_in_batches(harness):
    """Unfinished ones stay; pruned ids are ProcessNotFound."""
    h = harness(kinds.Three.definition().replace(max_concurrent=1))
    old = h.runner.submit("three", 1)
    h.run_all()
    h.clock.advance(3600)
    pending = h.runner.submit("three", 2)
    h.executor.jobs.clear()
    assert h.runner.prune(older_than=1800) == 1
    with pytest.raises(tierd.ProcessNotFound):
        h.runner.get(old)
    assert h.runner.get(pending)["status"] == "running"


def test_the_retention_pruner_runs_in_the_sweep(harness):
    """Retention completed=60: after the interval a sweep deletes it."""
    h = harness(kinds.Three, retention={"completed": 60.0}, prune_interval=10)
    pid = h.runner.submit("three", 1)
    h.run_all()
    h.advance(61)
    with pytest.raises(tierd.ProcessNotFound):
        h.runner.get(pid)


def test_estimated_completion_comes_from_past_step_durations(harness):
    """After one run where each step took 1 s, a new process at step one estimates 3 s."""
    h = harness(kinds.Three)
    HOOKS["double"] = lambda ctx: None
    first = h.runner.submit("three", 1)
    assert h.runner.get(first)["estimated_completion"] is None  # nothing learnt yet
    h.run_all()
    second = h.runner.submit("three", 1)
    assert h.runner.get(second)["estimated_completion"] == pytest.approx(h.clock.time(), abs=0.1)


def test_a_submit_the_store_cannot_write_is_rejected_and_nothing_runs(harness):
    """Disk full at submit: Rejected with the reason; no process, nothing in hand."""
    h = harness(kinds.Three)
    (pages,) = h.store._writer_db.execute("PRAGMA page_count").fetchone()
    h.store._writer_db.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(tierd.Rejected, match="database or disk is full"):
        h.runner.submit("three", "x" * 100_000)
    assert not h.executor.jobs
    assert h.runner.statistics().current == {}
