"""Fault: ``kill -9`` of ``tierd run`` in the middle of a batch of 600 items, then a restart.

"An item ran" is a line its handler appends before it returns (``LoggedItems``),
which the kill cannot undo; every fiftieth item then fails on purpose. The
store, read straight from its file after the kill, says which items the killed
run had committed as completed or failed.

After the restart on the same data_dir the batch ends with exact counts
(588 completed, 12 failed, 600 in all); no item the store had finished runs
again; an item that runs in both runs was unfinished at the kill; one the
store had as running runs again as attempt 2; every item ran.
"""

from __future__ import annotations

import collections
import sqlite3
from typing import TYPE_CHECKING

import pytest

import tierd
from tests.network import TierdProcess, echo_level, endpoint, network_config, to_toml
from tierd.testing import wait_until

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ITEMS = 600
DELAY = 0.01
"""Seconds per item: with 8 in flight, about 600 items a second at best."""


def lines(log: Path) -> list[tuple[int, int, int]]:
    """``(index, attempt, os pid)`` per item that ran."""
    if not log.exists():
        return []
    whole = log.read_text().split("\n")[:-1]
    return [(int(i), int(a), int(pid)) for _, i, a, pid in (line.split() for line in whole)]


def write_config(tmp_path: Path, address: str, data: Path) -> Path:
    config = network_config(address, echo_level(1), data_dir=str(data), log_level="warning")
    config["processes"] = {
        "kinds": [{"kind": "logged_items", "class": "tests.process.kinds:LoggedItems"}]
    }
    path = tmp_path / "kill9.toml"
    path.write_text(to_toml(config))
    return path


def test_kill9_mid_batch_resumes_without_running_a_finished_item_again(tmp_path, record_property):
    """Exact counts after the restart; finished items never run twice."""
    address = endpoint()
    data = tmp_path / "data"
    path = write_config(tmp_path, address, data)
    log = tmp_path / "items.log"
    params = {"count": ITEMS, "log": str(log), "delay": DELAY}

    first = TierdProcess(path).start()
    try:
        with tierd.Client(address) as client:
            wait_until(lambda: _answers(client), timeout=20)
            pid = client.processes.submit("logged_items", params, timeout=10)
        wait_until(lambda: len(lines(log)) >= ITEMS // 4, timeout=60)
    finally:
        first.kill()
    killed_pid = first.process.pid if first.process else -1
    with sqlite3.connect(data / "processes.db") as db:
        at_kill = dict(db.execute("SELECT idx, status FROM items WHERE process_id = ?", (pid,)))
    finished_at_kill = {i for i, status in at_kill.items() if status in {"completed", "failed"}}
    running_at_kill = {i for i, status in at_kill.items() if status == "running"}
    assert len(finished_at_kill) < ITEMS, "the batch ended before the kill: load it more"

    second = TierdProcess(path).start()
    try:
        with tierd.Client(address) as client:
            wait_until(lambda: _answers(client), timeout=20)
            final = client.processes.wait(pid, timeout=90)
            failed = client.processes.items(pid, status="failed", limit=100)["items"]
    finally:
        second.stop()
    before = [line for line in lines(log) if line[2] == killed_pid]
    after = [line for line in lines(log) if line[2] != killed_pid]
    ran_before = collections.Counter(index for index, _, _ in before)
    ran_after = collections.Counter(index for index, _, _ in after)

    assert final["status"] == "completed"  # fail_policy "collect"
    counts = (final["completed_items"], final["failed_items"], final["skipped_items"])
    assert counts == (ITEMS - ITEMS // 50, ITEMS // 50, 0)
    assert final["total_items"] == ITEMS
    assert [item["index"] for item in failed] == [i for i in range(ITEMS) if i % 50 == 7]
    assert all(item["error"]["message"].endswith("is bad on purpose") for item in failed)
    assert all(count == 1 for count in ran_before.values())
    assert all(count == 1 for count in ran_after.values())
    assert not finished_at_kill & set(ran_after), "an item the store had finished ran again"
    twice = set(ran_before) & set(ran_after)
    # A start that was written counts: an item stored running at the kill runs as attempt 2.
    assert all(attempt >= 2 for index, attempt, _ in after if index in running_at_kill)
    assert set(ran_before) | set(ran_after) == set(range(ITEMS))

    figures = {
        "items": ITEMS,
        "finished_at_kill": len(finished_at_kill),
        "ran_before": len(ran_before),
        "ran_after": len(ran_after),
        "ran_twice": len(twice),
        "running_at_kill": len(running_at_kill),
    }
    print("kill -9 batch:", " ".join(f"{k}={v}" for k, v in figures.items()))
    for key, value in figures.items():
        record_property(key, value)


def _answers(client: tierd.Client) -> bool:
    try:
        client.processes.list(limit=1, timeout=0.5)
    except tierd.RequestTimeout:
        return False
    return True
