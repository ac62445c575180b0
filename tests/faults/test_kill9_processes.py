"""Fault: ``kill -9`` of ``tierd run`` with 1,000 three-step processes in flight, then a restart.

"A step ran" is a line its body appends when it is done (``Logged``), which the
kill cannot undo. The store, read straight from its file after the kill, says
what the killed run had committed: which steps were completed, which were
running (interrupted), which processes were pending.

After the restart on the same data_dir: every process completes; no step the
store had completed runs again; a step that runs in both runs was running at
the kill (interrupted) and runs again as a new attempt; nothing runs three
times. The counts are printed.

``TIERD_KILL9_PROCESSES`` sets the load (default 1,000).
"""

from __future__ import annotations

import collections
import os
import sqlite3
from typing import TYPE_CHECKING

import pytest

import tierd
from tests.network import TierdProcess, echo_level, endpoint, network_config, to_toml
from tierd.testing import wait_until

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

PROCESSES = int(os.environ.get("TIERD_KILL9_PROCESSES", "1000"))
DELAY = 0.05
"""Seconds of the middle step: with max_concurrent 20, about 350 processes a second."""


def lines(log: Path) -> list[tuple[str, str, int, int]]:
    if not log.exists():
        return []
    whole = log.read_text().split("\n")[:-1]
    return [(p, s, int(a), int(pid)) for p, s, a, pid in (line.split() for line in whole)]


def write_config(tmp_path: Path, address: str, data: Path) -> Path:
    config = network_config(address, echo_level(1), data_dir=str(data), log_level="warning")
    config["processes"] = {"kinds": [{"kind": "logged", "class": "tests.process.kinds:Logged"}]}
    path = tmp_path / "kill9.toml"
    path.write_text(to_toml(config))
    return path


def committed(db: Path) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """Process statuses and step statuses as the store's file holds them."""
    with sqlite3.connect(db) as connection:
        processes = dict(connection.execute("SELECT id, status FROM processes"))
        steps = {
            (p, n): s
            for p, n, s in connection.execute("SELECT process_id, name, status FROM steps")
        }
    return processes, steps


def test_kill9_with_processes_in_flight_resumes_each_from_its_last_completed_step(
    tmp_path, record_property
):
    """Exact counts: every process completes, completed steps never run twice."""
    address = endpoint()
    data = tmp_path / "data"
    path = write_config(tmp_path, address, data)
    log = tmp_path / "steps.log"
    params = {"log": str(log), "delay": DELAY}

    first = TierdProcess(path).start()
    try:
        with tierd.Client(address) as client:
            wait_until(lambda: _answers(client), timeout=20)
            ids = [client.processes.submit("logged", params, timeout=10) for _ in range(PROCESSES)]
        wait_until(lambda: len(lines(log)) >= PROCESSES, timeout=60)
    finally:
        first.kill()
    before = lines(log)
    statuses, steps = committed(data / "processes.db")
    killed_pid = first.process.pid if first.process else -1
    at_kill = collections.Counter(statuses.values())
    step_states = collections.Counter(steps.values())
    assert set(statuses) == set(ids)
    assert at_kill["completed"] < PROCESSES, "everything finished before the kill: load it more"
    assert at_kill["running"] > 0

    second = TierdProcess(path).start()
    try:
        with tierd.Client(address) as client:
            wait_until(lambda: _answers(client), timeout=20)
            finals = {pid: client.processes.wait(pid, timeout=120)["status"] for pid in ids}
            documents = [client.processes.get(pid) for pid in ids[:50]]
    finally:
        second.stop()
    after = [line for line in lines(log) if line[3] != killed_pid]
    ran_before = collections.Counter((p, s) for p, s, _, _ in before)
    ran_after = collections.Counter((p, s) for p, s, _, _ in after)

    assert collections.Counter(finals.values()) == {"completed": PROCESSES}
    assert all(count == 1 for count in ran_before.values())
    assert all(count == 1 for count in ran_after.values())
    completed_at_kill = {key for key, status in steps.items() if status == "completed"}
    interrupted = {key for key, status in steps.items() if status == "running"}
    assert not completed_at_kill & set(ran_after), "a completed step ran again"
    twice = set(ran_before) & set(ran_after)
    assert twice <= interrupted, "a step ran twice that was not interrupted"
    assert all(attempt >= 2 for p, s, attempt, _ in after if (p, s) in interrupted)
    every_step = {(pid, name) for pid in ids for name in ("one", "two", "three")}
    assert set(ran_before) | set(ran_after) == every_step
    assert all(d["steps"][name]["status"] == "completed" for d in documents for name in d["steps"])

    figures = {
        "processes": PROCESSES,
        "completed_at_kill": at_kill["completed"],
        "running_at_kill": at_kill["running"],
        "pending_at_kill": at_kill["pending"],
        "steps_completed_at_kill": step_states["completed"],
        "steps_running_at_kill": len(interrupted),
        "steps_run_before": len(ran_before),
        "steps_run_after": len(ran_after),
        "steps_run_twice": len(twice),
        "completed_after_restart": PROCESSES,
    }
    print("kill -9 processes:", " ".join(f"{k}={v}" for k, v in figures.items()))
    for key, value in figures.items():
        record_property(key, value)


def _answers(client: tierd.Client) -> bool:
    try:
        client.processes.list(limit=1, timeout=0.5)
    except tierd.RequestTimeout:
        return False
    return True
