"""What a store's rows mean, without a store: the filters of a page, records to rows and back."""

from __future__ import annotations

import pytest

from tierd.processes._record import ProcessRecord, StepRecord
from tierd.processes._rows import (
    add_steps,
    list_filters,
    page_rows,
    process_record,
    process_row,
    requeued,
    step_row,
)


def test_list_filters_use_the_stores_placeholder_and_keep_the_order_of_their_values():
    """status, kind, since, until, then the cursor; no filter is no WHERE."""
    assert list_filters("?") == ("", [])
    where, values = list_filters("%s", status="failed", kind="k", since=1.0, until=2.0, cursor="7")
    assert where == (
        "WHERE status = %s AND kind = %s AND created_at >= %s AND created_at < %s AND n < %s"
    )
    assert values == ["failed", "k", 1.0, 2.0, 7]
    assert list_filters("?", kind="k") == ("WHERE kind = ?", ["k"])


def test_a_cursor_that_no_page_returned_is_refused():
    with pytest.raises(ValueError, match="bad cursor"):
        list_filters("?", cursor="abc")


def test_a_page_drops_n_and_names_the_next_cursor_only_when_more_rows_came():
    rows = [(9, "a"), (8, "b"), (7, "c")]
    assert page_rows(rows, 2) == ([("a",), ("b",)], "8")
    assert page_rows(rows, 3) == ([("a",), ("b",), ("c",)], None)
    assert page_rows([], 0) == ([], None)


def test_a_record_comes_back_from_its_rows():
    """The process row's first 15 values and its step rows (without position and kind)."""
    record = ProcessRecord("p1", "k", {"x": 1}, {"a": StepRecord("a"), "b": StepRecord("b")})
    record.steps["a"] = StepRecord("a", "completed", 1.0, "done", 1, [], 2, 3, None, 4.0, 5.0)
    back = process_record(process_row(record, None)[:15])
    assert list(back.steps) == ["a", "b"]
    assert back.params == {"x": 1}
    row = step_row(record, 0, record.steps["a"])
    add_steps({"p1": back}, [(row[0], *row[2:3], *row[4:])])
    assert back.steps["a"] == record.steps["a"]


def test_requeued_keeps_completed_steps_before_the_one_to_run_again():
    record = ProcessRecord("p1", "k", None, {n: StepRecord(n) for n in "abc"}, status="failed")
    record.steps["a"] = StepRecord("a", "completed", attempts=1)
    record.steps["b"] = StepRecord("b", "failed", attempts=2, input="in")
    rows, event = requeued(record, 1, 9.0)
    assert [row[1] for row in rows] == [1, 2]
    assert record.steps["b"] == StepRecord("b", attempts=2, input="in")
    assert record.status == "pending"
    assert event == {"type": "process_retried", "at": 9.0, "seq": record.seq, "from_step": "b"}
