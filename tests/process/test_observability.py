"""What a process tells the outside: its metrics families and its log lines."""

from __future__ import annotations

import io
import json

import structlog

from tests.process.test_runtime import config
from tierd.logging import configure


def test_the_process_families_are_exported(make_runtime, tmp_path):
    """Finished, durations, step durations, retries, current gauges, recovered (DESIGN §7)."""
    rt = make_runtime(config(tmp_path, {"kind": "greet", "class": "tests.process.kinds:Greet"}))
    pid = rt.processes.submit("greet", "ann")
    rt.processes.wait(pid, timeout=10)
    text = rt.metrics.exposition().decode()
    for line in (
        'tierd_processes{kind="greet",status="pending"} 0.0',
        'tierd_processes_finished_total{kind="greet",status="completed"} 1.0',
        'tierd_processes_finished_total{kind="greet",status="failed"} 0.0',
        'tierd_process_duration_seconds_count{kind="greet"} 1.0',
        'tierd_process_step_duration_seconds_count{kind="greet",step="ask"} 1.0',
        'tierd_processes_recovered_total{kind="greet"} 0.0',
        "# TYPE tierd_process_step_retries_total counter",
        "# TYPE tierd_schedule_fires_total counter",
    ):
        assert line in text, line


def test_every_log_line_of_a_process_carries_its_ids(make_runtime, tmp_path):
    """process_id, kind, step and the correlation ids, on the runner's lines and ctx.log's."""
    buffer = io.StringIO()
    configure("json", "debug", stream=buffer)
    try:
        rt = make_runtime(config(tmp_path, {"kind": "greet", "class": "tests.process.kinds:Greet"}))
        ids = {"request_id": "r1", "user_id": "u1", "session_id": "s1", "trace_id": "t1"}
        pid = rt.processes.submit("greet", "ann", correlation=ids)
        rt.processes.wait(pid, timeout=10)
    finally:
        structlog.reset_defaults()
    records = [json.loads(line) for line in buffer.getvalue().splitlines()]
    ours = [r for r in records if r.get("process_id") == pid]
    events = {r["event"] for r in ours}
    assert {"process_started", "step_started", "asking", "step_completed"} <= events
    for record in ours:
        assert record["kind"] == "greet"
        assert {key: record[key] for key in ids} == ids
    stepped = [r for r in ours if r["event"] in {"asking", "step_started", "step_completed"}]
    assert all(r["step"] in {"ask", "tell"} for r in stepped)
