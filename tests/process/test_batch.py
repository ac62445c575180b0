"""Batches driven by hand on a fake clock: items, batches, concurrency, retries, fail policies."""

from __future__ import annotations

import pytest

import tierd
from tests.process import kinds
from tests.process.kinds import CALLS, HOOKS

pytestmark = pytest.mark.timeout(30)


def items_of(h, pid, status=None):
    return h.runner.items(pid, status=status, limit=1000)["items"]


def test_a_batch_runs_every_item_and_completes_with_exact_counts(harness):
    """12 items in batches of 5: every item once, its result stored, progress 1.0."""
    h = harness(kinds.Squares)
    pid = h.runner.submit("squares", {"count": 12})
    h.run_all()
    status = h.runner.get(pid)
    assert status["status"] == "completed"
    assert sorted(item for name, item in CALLS) == list(range(12))
    assert status["total_items"] == 12
    assert status["completed_items"] == 12
    assert status["failed_items"] == 0
    assert status["batches"] == 3
    assert status["progress"] == 1.0
    assert status["result"]["failed"] == []
    listed = items_of(h, pid)
    assert [i["index"] for i in listed] == list(range(12))
    assert {i["status"] for i in listed} == {"completed"}
    assert [i["result"] for i in listed] == [n * n for n in range(12)]
    assert all(i["attempts"] == 1 for i in listed)


def test_at_most_max_concurrent_items_are_in_flight_and_a_batch_waits_for_its_last(harness):
    """3 in flight of a batch of 5; the next batch starts only once the last one ended."""
    h = harness(kinds.Squares)
    pid = h.runner.submit("squares", {"count": 12})
    assert h.executor.run_next() == "tierd-items-squares"  # reads items() into the store
    seen = []
    while h.executor.jobs:
        seen.append(len(h.executor.jobs))
        h.executor.run_next()
    assert max(seen) == 3
    assert h.runner.get(pid)["status"] == "completed"
    # Batch boundaries: items 0-4, then 5-9, then 10-11, in order of index.
    assert [item for _, item in CALLS] == list(range(12))


def test_items_are_read_in_bounded_chunks_never_all_at_once(harness):
    """A million items: the first read takes one chunk of 1,000 into the store, no more."""
    h = harness(kinds.Squares)
    pid = h.runner.submit("squares", {"count": 1_000_000})
    h.executor.run_next()
    h.store.barrier().wait()
    assert sum(h.store.item_counts(pid).values()) == 1000
    status = h.runner.get(pid)
    assert status["total_items"] is None  # items() is not exhausted
    assert status["current_batch"] == 1
    assert status["batch"] == {
        "number": 1, "items": 5, "round": 0, "completed": 0, "failed": 0, "in_flight": 3,
    }  # fmt: skip
    h.runner.cancel(pid)
    final = h.runner.get(pid)
    assert final["status"] == "cancelled"
    assert final["skipped_items"] == 1000
    assert final["total_items"] == 1000


def test_the_delay_between_batches_is_kept_on_the_runner_clock(harness):
    """The second batch starts 10 s after the first ended, not a moment before."""
    h = harness(kinds.Slow)
    pid = h.runner.submit("slow", {"count": 8})
    h.run_all()
    assert len(CALLS) == 4
    h.advance(9.9)
    h.run_all()
    assert len(CALLS) == 4
    assert h.runner.get(pid)["current_batch"] is None
    h.advance(0.1)
    h.run_all()
    assert len(CALLS) == 8
    assert h.runner.get(pid)["status"] == "completed"


def test_a_batch_with_failures_runs_again_for_its_failed_items_only(harness):
    """Item 1 fails once, item 2 always: the retry runs 1 and 2 only; 2 fails for good."""
    h = harness(kinds.Slow)
    HOOKS["fail"] = {1: 1, 2: 5}
    pid = h.runner.submit("slow", {"count": 4})
    h.run_all()
    assert sorted(item for _, item in CALLS) == [0, 1, 2, 3]
    during = {i["index"]: i for i in items_of(h, pid)}
    assert during[2]["status"] == "pending"  # waiting for the batch's retry
    assert during[2]["error"]["message"] == "item 2 is bad"
    h.advance(10)
    h.run_all()
    assert sorted(item for _, item in CALLS) == [0, 1, 1, 2, 2, 3]
    status = h.runner.get(pid)
    assert status["status"] == "completed"  # fail_policy "collect"
    assert (status["completed_items"], status["failed_items"]) == (3, 1)
    attempts = {i["index"]: i["attempts"] for i in items_of(h, pid)}
    assert attempts == {0: 1, 1: 2, 2: 2, 3: 1}
    assert [f["index"] for f in status["result"]["failed"]] == [2]
    assert status["result"]["failed"][0]["error"]["error_type"] == "ValueError"
    assert [i["index"] for i in items_of(h, pid, "failed")] == [2]


def test_fail_fast_stops_at_the_first_failed_item_and_skips_the_rest(harness):
    """Item 1 fails: item 2 (in flight) finishes, nothing else starts; 9 are skipped."""
    h = harness(kinds.FailFast)
    HOOKS["fail"] = {1}
    pid = h.runner.submit("fail_fast", {"count": 12})
    h.run_all()
    assert [item for _, item in CALLS] == [0, 1, 2]
    status = h.runner.get(pid)
    assert status["status"] == "failed"
    assert status["error"]["error_code"] == "items_failed"
    assert "item 1 failed: item 1 is bad" in status["error"]["message"]
    counts = (status["completed_items"], status["failed_items"], status["skipped_items"])
    assert counts == (2, 1, 9)
    assert status["total_items"] == 12
    assert len(items_of(h, pid, "skipped")) == 9
    assert status["error"]["details"]["failed"][0]["index"] == 1


def test_collect_runs_every_item_and_completes_listing_the_failures(harness):
    """Three bad items of 12: all 12 run, the batch completes, the result lists the three."""
    h = harness(kinds.Squares)
    HOOKS["fail"] = {3, 7, 11}
    pid = h.runner.submit("squares", {"count": 12})
    h.run_all()
    status = h.runner.get(pid)
    assert status["status"] == "completed"
    assert len(CALLS) == 12
    assert (status["completed_items"], status["failed_items"], status["total_items"]) == (9, 3, 12)
    assert [f["index"] for f in status["result"]["failed"]] == [3, 7, 11]
    assert h.runner.result(pid)["failed_items"] == 3


@pytest.mark.parametrize(("bad", "final"), [({0, 1}, "failed"), ({0}, "completed")])
def test_a_threshold_fails_the_batch_once_the_failed_share_reaches_it(harness, bad, final):
    """fail_policy 0.25 over 8 items: 2 failed (25 %) fail it, 1 (12.5 %) does not."""
    h = harness(kinds.Threshold)
    HOOKS["fail"] = bad
    pid = h.runner.submit("threshold", {"count": 8})
    h.run_all()
    status = h.runner.get(pid)
    assert len(CALLS) == 8
    assert status["status"] == final
    assert status["failed_items"] == len(bad)
    assert status["completed_items"] + status["failed_items"] == 8


def test_items_raising_half_way_fails_the_batch_after_the_items_it_gave(harness):
    """items() breaks at item 7: items 0-6 are processed, then the batch fails with the error."""
    h = harness(kinds.Squares)
    pid = h.runner.submit("squares", {"count": 20, "raise_at": 7})
    h.run_all()
    status = h.runner.get(pid)
    assert sorted(item for _, item in CALLS) == list(range(7))
    assert status["status"] == "failed"
    assert status["error"]["error_type"] == "LookupError"
    assert "the source broke at 7" in status["error"]["message"]
    assert (status["completed_items"], status["total_items"]) == (7, 7)
    assert status["error"]["details"]["completed_items"] == 7


def test_pause_takes_effect_between_items_and_resume_goes_on(harness):
    """Paused with 3 in flight: they finish, nothing starts; resumed, the rest run once."""
    h = harness(kinds.Squares)
    pid = h.runner.submit("squares", {"count": 10})
    h.executor.run_next()
    h.runner.pause(pid)
    assert h.runner.get(pid)["status"] == "running"  # until the items in flight end
    h.run_all()
    paused = h.runner.get(pid)
    assert paused["status"] == "paused"
    assert paused["completed_items"] == 3
    h.runner.resume(pid)
    h.run_all()
    final = h.runner.get(pid)
    assert final["status"] == "completed"
    assert sorted(item for _, item in CALLS) == list(range(10))
    assert final["completed_items"] == 10


def test_cancel_ends_the_batch_at_once_with_every_item_accounted_for(harness):
    """Cancelled with items in flight: cancelled, their late results ignored, all skipped."""
    h = harness(kinds.Squares)
    pid = h.runner.submit("squares", {"count": 10})
    h.executor.run_next()
    h.executor.run_next()  # item 0 completes; 1, 2 and 3 are in flight
    h.runner.cancel(pid)
    h.run_all()
    status = h.runner.get(pid)
    assert status["status"] == "cancelled"
    assert (status["completed_items"], status["skipped_items"], status["total_items"]) == (1, 9, 10)
    assert {i["status"] for i in items_of(h, pid)[1:]} == {"skipped"}


def test_an_item_past_its_timeout_fails_that_attempt_and_the_retry_runs_it_again(harness):
    """Items that never return: at item_timeout they fail, and the batch's retry runs them."""
    h = harness(kinds.Slow)
    pid = h.runner.submit("slow", {"count": 2})
    h.executor.run_next()
    stale = list(h.executor.jobs)
    h.executor.jobs.clear()  # the two attempts hang: never run
    h.advance(30)
    during = items_of(h, pid)
    assert {i["status"] for i in during} == {"pending"}
    assert during[0]["error"]["error_type"] == "ItemTimeout"
    h.advance(10)
    h.run_all()
    for _, job in stale:
        job()  # the hung attempts come back at last: ignored
    status = h.runner.get(pid)
    assert status["status"] == "completed"
    assert [i["attempts"] for i in items_of(h, pid)] == [2, 2]


def test_a_restart_runs_the_items_left_and_never_a_finished_one_again(harness):
    """Items 0 and 1 done, 2-4 in flight at the crash: after it, 2-9 run once, 2-4 as attempt 2."""
    h = harness(kinds.Squares)
    pid = h.runner.submit("squares", {"count": 10})
    for _ in range(3):
        h.executor.run_next()  # the read, item 0, item 1
    h.runner.sweep()  # writes the items' ends, as the runtime's sweeper does
    h.restart()
    CALLS.clear()
    h.run_all()
    status = h.runner.get(pid)
    assert status["status"] == "completed"
    assert sorted(item for _, item in CALLS) == list(range(2, 10))
    assert (status["completed_items"], status["total_items"]) == (10, 10)
    attempts = {i["index"]: i["attempts"] for i in items_of(h, pid)}
    assert attempts == {0: 1, 1: 1, 2: 2, 3: 2, 4: 2, 5: 1, 6: 1, 7: 1, 8: 1, 9: 1}


def test_retry_of_a_failed_batch_runs_its_failed_and_skipped_items_only(harness):
    """fail_fast stopped it; once the cause is gone, retry runs the failed and skipped items."""
    h = harness(kinds.FailFast)
    HOOKS["fail"] = {1}
    pid = h.runner.submit("fail_fast", {"count": 6})
    h.run_all()
    assert h.runner.get(pid)["status"] == "failed"
    HOOKS["fail"] = set()
    CALLS.clear()
    h.runner.retry(pid)
    h.run_all()
    status = h.runner.get(pid)
    assert status["status"] == "completed"
    assert sorted(item for _, item in CALLS) == [1, 3, 4, 5]
    assert (status["completed_items"], status["failed_items"]) == (6, 0)


def test_progress_events_carry_the_item_counts(harness):
    """step_progress events of a batch say completed, failed and total items."""
    h = harness(kinds.Squares)
    pid = h.runner.submit("squares", {"count": 7})
    h.executor.run_next()
    h.advance(1.0)
    h.run_all()
    h.advance(1.0)
    progress = [e for e in h.runner.history(pid) if e["type"] == "step_progress"]
    assert progress
    assert {"completed_items", "failed_items", "total_items", "batches"} <= set(progress[-1])
    assert h.runner.get(pid)["progress"] == 1.0


def test_items_are_listed_by_index_in_pages_filtered_by_status(harness):
    """25 items, pages of 10: 10, 10, 5, the cursor None on the last; status filters."""
    h = harness(kinds.Squares, kinds.Three)
    HOOKS["fail"] = {4, 20}
    pid = h.runner.submit("squares", {"count": 25})
    h.run_all()
    pages, cursor = [], None
    while True:
        page = h.runner.items(pid, limit=10, cursor=cursor)
        pages.append([i["index"] for i in page["items"]])
        cursor = page["cursor"]
        if cursor is None:
            break
    assert pages == [list(range(10)), list(range(10, 20)), list(range(20, 25))]
    failed = h.runner.items(pid, status="failed")["items"]
    assert [(i["index"], i["error"]["message"]) for i in failed] == [
        (4, "item 4 is bad"), (20, "item 20 is bad"),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="unknown item status 'done'"):
        h.runner.items(pid, status="done")
    with pytest.raises(ValueError, match="bad cursor"):
        h.runner.items(pid, cursor="x")
    other = h.runner.submit("three", 1)
    with pytest.raises(ValueError, match="not a batch"):
        h.runner.items(other)
    with pytest.raises(tierd.ProcessNotFound):
        h.runner.items("nope")


def test_a_batch_class_is_checked_when_its_definition_is_made():
    """No process_item, steps on a batch, or a limit out of range: refused, naming it."""

    class NoWork(tierd.Batch):
        pass

    class Bad(kinds.Squares):
        batch_size = 0

    class Policy(kinds.Squares):
        fail_policy = "sometimes"

    class Stepped(kinds.Squares):
        @tierd.step
        def extra(self, ctx, data):
            return data

    with pytest.raises(TypeError, match="must define process_item"):
        NoWork.definition()
    with pytest.raises(ValueError, match="Bad: batch_size must be a whole number >= 1"):
        Bad.definition()
    with pytest.raises(ValueError, match="fail_policy must be 'fail_fast', 'collect' or"):
        Policy.definition()
    with pytest.raises(TypeError, match=r"it has items, not @tierd\.step steps"):
        Stepped.definition()
    assert kinds.Squares.definition().max_concurrent == 10  # batches at once: max_processes
    assert kinds.Squares.definition().batch.max_concurrent == 3  # items in flight


def test_an_item_in_flight_sees_a_cancel_at_its_next_heartbeat(harness):
    """ctx.heartbeat in process_item is where a cancel raises Cancelled; progress is a beat."""
    h = harness(kinds.Squares)
    seen = []

    def hook(ctx, item):
        if item == 1:
            h.runner.cancel(ctx.process_id)
            with pytest.raises(tierd.Cancelled) as cancelled:
                ctx.heartbeat()
            seen.append(cancelled.value)
        else:
            ctx.progress(0.5, note="half")

    HOOKS["item"] = hook
    pid = h.runner.submit("squares", {"count": 6})
    h.run_all()
    status = h.runner.get(pid)
    assert len(seen) == 1
    assert status["status"] == "cancelled"
    assert (status["completed_items"], status["skipped_items"]) == (1, 5)
