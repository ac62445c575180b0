"""Leases on the runner's side: renewed by the owner's sweep, adopted by another runner once lapsed.

Two runners on one store (each store passes), a fake clock, attempts run by hand:
runner "a" takes a process and then goes silent (as a runtime killed with ``kill -9``
does); runner "b" keeps sweeping and, ``stuck_after`` later, adopts and finishes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.process import kinds
from tests.process.manual import ManualExecutor
from tierd.processes._postgres import PostgresProcessStore
from tierd.processes._runner import COUNTS_EVERY, LEASE_RENEWALS, ProcessRunner
from tierd.processes._sqlite import SqliteProcessStore
from tierd.testing import FakeClock

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tierd.processes._store import ProcessStore

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ProcessStore]:
    kinds.CALLS.clear()  # what other tests' Three ran
    made: ProcessStore
    if request.param == "sqlite":
        made = SqliteProcessStore(tmp_path / "processes.db")
    else:
        made = PostgresProcessStore(request.getfixturevalue("postgres_url"), poll_interval=30)
    yield made
    made.close()
    kinds.CALLS.clear()


def runner(store: ProcessStore, owner: str, clock: FakeClock) -> tuple[ProcessRunner, Any]:
    executor = ManualExecutor()
    made = ProcessRunner(
        [kinds.Three.definition()], store, clock=clock, executor=executor, owner=owner,
        stuck_after=60,
    )  # fmt: skip
    made.start()
    return made, executor


def test_a_silent_owners_process_is_adopted_after_stuck_after_and_finished_once(store):
    """Its interrupted step runs again as attempt 2; the steps it completed do not run again."""
    clock = FakeClock()
    a, a_steps = runner(store, "a", clock)
    b, _ = runner(store, "b", clock)
    pid = a.submit("three", 1)
    a_steps.run_next()  # "add" completes on a; "double" is in a's hands when a goes silent
    assert kinds.CALLS == [("add", 1)]
    store.barrier().wait(5)
    clock.advance(59)
    b.sweep()
    assert pid not in b._runs  # a renewed at start; 59 s is not yet stuck_after
    clock.advance(60 / LEASE_RENEWALS)  # b looks for lapsed leases this often
    b.sweep()
    assert pid in b._runs
    b.executor.run_all()
    final = b.wait(pid, timeout=5)
    assert final["status"] == "completed"
    assert final["result"] == "=4"
    assert [final["steps"][name]["attempts"] for name in ("add", "double", "text")] == [1, 2, 1]
    assert kinds.CALLS == [("add", 1), ("double", 2), ("text", 4)]
    assert [e["type"] for e in store.history(pid)].count("process_recovered") == 1
    assert b.statistics().recovered == {"three": 1}


def test_an_owner_that_keeps_sweeping_keeps_its_processes(store):
    """Renewed every stuck_after / LEASE_RENEWALS: another runner never takes them."""
    clock = FakeClock()
    a, _ = runner(store, "a", clock)
    b, _ = runner(store, "b", clock)
    pid = a.submit("three", 1)  # its attempts are never run: a's own sweep retries them
    for _ in range(LEASE_RENEWALS * 5):
        clock.advance(60 / LEASE_RENEWALS)
        a.sweep()
        b.sweep()
    assert pid in a._runs
    assert pid not in b._runs
    assert [r.process_id for r in store.unfinished("a")] == [pid]


def test_a_runner_that_stops_cleanly_releases_its_leases_to_the_others_at_once(store):
    """No attempt left running at stop: b adopts at its next look, not stuck_after later."""
    clock = FakeClock()
    a, a_steps = runner(store, "a", clock)
    b, _ = runner(store, "b", clock)
    pid = a.submit("three", 1)
    a_steps.run_next()  # add completes; double waits in a's executor
    a_steps.jobs.clear()  # ...and is dropped, as a stop interrupts it
    assert a.stop(timeout=0) == 0
    clock.advance(60 / LEASE_RENEWALS)
    b.sweep()
    assert pid in b._runs
    b.executor.run_all()
    assert b.wait(pid, timeout=5)["status"] == "completed"


def test_the_gauges_count_what_other_runners_on_the_store_run(store):
    """Every COUNTS_EVERY seconds the sweep reads the store's counts: a's process shows on b."""
    clock = FakeClock()
    a, _ = runner(store, "a", clock)
    b, _ = runner(store, "b", clock)
    a.submit("three", 1)
    assert b.statistics().current == {}
    clock.advance(COUNTS_EVERY)
    b.sweep()
    assert b.statistics().current == {("three", "running"): 1}
