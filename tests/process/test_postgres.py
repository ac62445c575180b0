"""The PostgreSQL process store under real runtimes: one in-process, three ``tierd run``s.

Counts are read straight from the database: each process completed once, each
step's attempts as expected, the work spread over the runtimes; after a
``kill -9`` the others adopt the dead runtime's processes once its leases lapse.
"""

from __future__ import annotations

import collections
import concurrent.futures
import signal
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

import tierd
from tests.network import echo_level, endpoint, network_config, to_toml
from tests.process import kinds
from tests.process.manual import ManualExecutor
from tests.processes import run_tierd
from tierd.processes._postgres import PostgresProcessStore
from tierd.processes._runner import ProcessRunner
from tierd.processes._schedule_driver import ScheduleDriver
from tierd.processes._schedules import Cron, ScheduleSpec
from tierd.testing import FakeClock, wait_until

if TYPE_CHECKING:
    from pathlib import Path

    from tests.postgres import PostgresServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

KINDS = [{"kind": "shared", "class": "tests.process.kinds:Shared"}]


def test_a_runtime_on_postgresql_runs_processes_as_on_sqlite(make_runtime, postgres_url):
    """Only the URL changes: submit, wait, get, list, history and batch items answer the same."""
    runtime = make_runtime({
        "levels": [echo_level(1)],
        "processes": {"store": postgres_url, "kinds": [
            {"kind": "three", "class": "tests.process.kinds:Three"},
            {"kind": "nap", "class": "tests.process.kinds:Nap"},
            {"kind": "squares", "class": "tests.process.kinds:Squares"}]},
    })  # fmt: skip
    napping = runtime.processes.submit("nap", {"seconds": 0.2}, key="once")
    assert runtime.processes.submit("nap", {"seconds": 0.2}, key="once") == napping
    assert runtime.processes.wait(napping, timeout=10)["status"] == "completed"
    process_id = runtime.processes.submit("three", 1)
    final = runtime.processes.wait(process_id, timeout=10)
    assert final["status"] == "completed"
    assert final["result"] == "=4"
    assert runtime.processes.list(kind="three")["items"][0]["process_id"] == process_id
    assert runtime.processes.history(process_id)[-1]["type"] == "process_completed"
    batch = runtime.processes.submit("squares", {"count": 12})
    done = runtime.processes.wait(batch, timeout=10)
    assert done["status"] == "completed"
    assert done["completed_items"] == 12
    page = runtime.processes.items(batch, limit=5)
    assert [item["result"] for item in page["items"]] == [0, 1, 4, 9, 16]


def test_a_process_another_runtime_runs_is_waited_for_and_read_here(make_runtime, postgres_url):
    """B's one slot is busy: A hears the NOTIFY and runs B's next submit; B's ``wait`` sees it.

    And ``stats`` on A counts the process running on B: counts come from the store.
    """

    def config(name: str) -> dict[str, Any]:
        return {
            "runtime": {"name": name},
            "levels": [echo_level(1)],
            "processes": {"store": postgres_url, "kinds": [
                {"kind": "nap", "class": "tests.process.kinds:Nap", "max_concurrent": 1}]},
        }  # fmt: skip

    here = make_runtime(config("b"))
    busy = here.processes.submit("nap", {"seconds": 1.0})
    wait_until(lambda: here.processes.get(busy)["status"] == "running", timeout=5)
    there = make_runtime(config("a"))  # only now: b's one slot is taken by busy
    elsewhere = here.processes.submit("nap", {"seconds": 0.1})
    final = here.processes.wait(elsewhere, timeout=10)
    assert final["status"] == "completed"
    assert here.processes.get(busy)["status"] == "running"  # it was still busy meanwhile
    assert there.processes.stats(kind="nap")["counts"]["running"] == 1  # b's, counted on a
    assert there.processes.get(elsewhere)["status"] == "completed"
    with psycopg.connect(postgres_url) as db:
        owners = dict(db.execute("SELECT id, owner FROM processes").fetchall())
    assert owners == {busy: "b", elsewhere: "a"}
    assert [e["type"] for e in here.processes.history(elsewhere)][-1] == "process_completed"


def test_store_migrate_creates_the_schema_then_reports_it_up_to_date(postgres_url, tmp_path):
    """``tierd store migrate --config F``: version 0 to the newest, then nothing to do."""
    config = tmp_path / "store.toml"
    config.write_text(to_toml({
        "runtime": {"data_dir": str(tmp_path / "data")}, "levels": [echo_level(1)],
        "processes": {"store": postgres_url, "kinds": KINDS},
    }))  # fmt: skip
    first = run_tierd("store", "migrate", "--config", str(config))
    assert first.returncode == 0, first.stderr
    assert "PostgreSQL process store: schema migrated from version 0 to 1" in first.stdout
    again = run_tierd("store", "migrate", "--config", str(config))
    assert again.returncode == 0, again.stderr
    assert "schema at version 1, up to date" in again.stdout


def test_without_psycopg_a_postgresql_store_says_what_to_install():
    """The optional psycopg missing: a ConfigError naming the key and what to install."""
    script = (
        "import sys; sys.modules['psycopg'] = None\n"
        "import tierd\n"
        "from tierd.processes._open import open_store\n"
        "try:\n"
        "    open_store('postgresql://u@127.0.0.1/db', '')\n"
        "except tierd.ConfigError as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=30, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "[processes] store: a PostgreSQL store needs psycopg" in done.stdout
    assert "pip install 'tierd[postgresql]'" in done.stdout


def test_store_migrate_of_a_sqlite_store_makes_the_file_at_the_newest_version(tmp_path):
    """The same command for the default store: the file under data_dir, then up to date."""
    config = tmp_path / "store.toml"
    config.write_text(to_toml({
        "runtime": {"data_dir": str(tmp_path / "data")}, "levels": [echo_level(1)],
        "processes": {"kinds": KINDS},
    }))  # fmt: skip
    first = run_tierd("store", "migrate", "--config", str(config))
    assert first.returncode == 0, first.stderr
    assert "SQLite process store: schema migrated from version 0 to 2" in first.stdout
    assert (tmp_path / "data" / "processes.db").exists()
    again = run_tierd("store", "migrate", "--config", str(config))
    assert "schema at version 2, up to date" in again.stdout


def test_store_migrate_without_a_reachable_database_says_so_in_one_line(tmp_path):
    """Exit 1, one line naming the key, no traceback, no password."""
    config = tmp_path / "store.toml"
    config.write_text(to_toml({
        "levels": [echo_level(1)],
        "processes": {"store": f"postgresql://u:hunter2@127.0.0.1:{endpoint()[-5:]}/db",
                      "kinds": KINDS},
    }))  # fmt: skip
    done = run_tierd("store", "migrate", "--config", str(config))
    assert done.returncode == 1
    assert "[processes] store: cannot use" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "hunter2" not in done.stderr
    nothing = tmp_path / "none.toml"
    nothing.write_text(to_toml({"levels": [echo_level(1)]}))
    assert run_tierd("store", "migrate", "--config", str(nothing)).returncode == 2


def _start(tierd_cli: Any, tmp_path: Path, url: str, name: str) -> tuple[Any, str]:
    address = endpoint()
    config = network_config(
        address, echo_level(1), name=name, data_dir=str(tmp_path / name), sweep_interval=0.05
    )
    config["processes"] = {"store": url, "stuck_after": 4, "kinds": KINDS}
    path = tmp_path / f"{name}.toml"
    path.write_text(to_toml(config))
    server = tierd_cli("run", str(path), "--log-level", "warning")
    server.wait_for_line("running", timeout=30)
    return server, address


def _submit(address: str, count: int, seconds: float) -> list[str]:
    with tierd.Client(address) as client:
        return [client.processes.submit("shared", {"seconds": seconds}) for _ in range(count)]


def test_three_runtimes_share_one_database_and_finish_a_dead_ones_work(
    tierd_cli, tmp_path, postgres_server: PostgresServer, record_property
):
    """3,000 processes through any of three runtimes: each completed once, every runtime busy.

    Then ``kill -9`` of one while it runs processes: the two others adopt them
    after ``stuck_after`` (4 s) and finish them; the interrupted steps run again.
    """
    url = postgres_server.database()
    servers = [_start(tierd_cli, tmp_path, url, name) for name in ("a", "b", "c")]

    def sql(query: str, *params: Any) -> list[tuple[Any, ...]]:
        return postgres_server.query(url, query, *params)

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        batches = list(pool.map(lambda s: _submit(s[1], 1000, 0.002), servers))
    ids = {i for batch in batches for i in batch}
    assert len(ids) == 3000
    wait_until(
        lambda: sql("SELECT count(*) FROM processes WHERE status = 'completed'")[0][0] == 3000,
        timeout=60, interval=0.2,
    )  # fmt: skip
    assert sql("SELECT count(*) FROM processes")[0][0] == 3000
    again = sql("SELECT process_id FROM steps WHERE attempts <> 1")
    assert again == [], sql(
        "SELECT process_id, seq, type, at FROM events WHERE process_id = ANY(%s) ORDER BY 1, 2",
        [p for (p,) in again],
    )
    uneven = sql(
        "SELECT process_id FROM events WHERE type = 'step_completed' "
        "GROUP BY process_id HAVING count(*) <> 3"
    )
    assert uneven == []  # with every step completed: each step completed once
    by_owner = dict(sql("SELECT owner, count(*) FROM processes GROUP BY owner"))
    assert set(by_owner) == {"a", "b", "c"}
    assert all(count >= 100 for count in by_owner.values()), by_owner
    record_property("processes_by_runtime", by_owner)

    # kill -9 of "a" while it runs processes submitted through the others.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        later = list(pool.map(lambda s: _submit(s[1], 150, 0.1), servers[1:]))
    assert len({i for batch in later for i in batch}) == 300
    wait_until(
        lambda: sql("SELECT count(*) FROM processes WHERE owner = 'a' AND status = 'running'")[0][0]
        >= 5,
        timeout=20, interval=0.01,
    )  # fmt: skip
    servers[0][0].process.send_signal(signal.SIGKILL)
    servers[0][0].process.wait(10)
    wait_until(  # the server has dropped its connections: what it committed is all there is
        lambda: not sql("SELECT 1 FROM pg_stat_activity WHERE application_name = 'tierd a'"),
        timeout=10, interval=0.01,
    )  # fmt: skip
    orphans = [
        i for (i,) in sql("SELECT id FROM processes WHERE owner = 'a' AND status = 'running'")
    ]
    attempts = {(p, name): n for p, name, n in sql("SELECT process_id, name, attempts FROM steps")}
    interrupted = {
        (p, name) for p, name in sql(
            "SELECT process_id, name FROM steps WHERE status = 'running' AND process_id = ANY(%s)",
            orphans,
        )
    }  # fmt: skip
    assert orphans
    record_property("adopted_after_kill", len(orphans))
    wait_until(
        lambda: sql("SELECT count(*) FROM processes WHERE status = 'completed'")[0][0] == 3300,
        timeout=40, interval=0.2,
    )  # fmt: skip
    adopted = dict(sql("SELECT id, owner FROM processes WHERE id = ANY(%s)", list(orphans)))
    assert set(adopted.values()) <= {"b", "c"}
    recovered = collections.Counter(
        process_id for (process_id,) in sql(
            "SELECT process_id FROM events WHERE type = 'process_recovered'")
    )  # fmt: skip
    assert recovered == dict.fromkeys(orphans, 1)
    expected = {key: count + (key in interrupted) for key, count in attempts.items()}
    after = {(p, name): n for p, name, n in sql("SELECT process_id, name, attempts FROM steps")}
    assert {key: after[key] for key in expected} == expected
    steps_done = sql("SELECT count(*) FROM steps WHERE status = 'completed'")[0][0]
    assert steps_done == 3300 * 3
    for server, _ in servers[1:]:
        assert server.finish() == 0


def test_a_minute_schedule_across_three_runtimes_fires_once_per_minute(postgres_url):
    """Three runners and drivers, each on its own connection to one database, own clock, own thread.

    They tick through the same 20 simulated minutes at once, racing to claim each
    fire: every minute is recorded once and submits one process, whoever won it.
    """
    spec = ScheduleSpec("minutely", Cron("* * * * *"), process="three", params=1, overlap="allow")
    made: list[tuple[FakeClock, ScheduleDriver, PostgresProcessStore]] = []
    try:
        for name, offset in (("a", 0.0), ("b", 0.25), ("c", 0.5)):
            clock = FakeClock(monotonic=1000.0 + offset, wall=1_800_000_000.0 + offset)
            store = PostgresProcessStore(postgres_url, name=name, poll_interval=30)
            runner = ProcessRunner(
                [kinds.Three.definition().replace(max_concurrent=100)], store,
                clock=clock, executor=ManualExecutor(), owner=name,
            )  # fmt: skip
            runner.start()
            driver = ScheduleDriver([spec], store, runner=runner, send=lambda *_: "m",
                                    clock=clock, owner=name)  # fmt: skip
            driver.start()
            made.append((clock, driver, store))
        start = threading.Barrier(3)

        def tick_for_20_minutes(clock: FakeClock, driver: ScheduleDriver) -> None:
            start.wait(timeout=10)
            for _ in range(20 * 60):
                clock.advance(1)
                driver.tick()

        threads = [threading.Thread(target=tick_for_20_minutes, args=(c, d)) for c, d, _ in made]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=50)
        with psycopg.connect(postgres_url) as db:
            fires = db.execute("SELECT fire_at, outcome FROM schedule_fires ORDER BY 1").fetchall()
            processes = db.execute("SELECT count(*) FROM processes").fetchone()[0]
        assert fires == [(1_800_000_000.0 + 60.0 * n, "fired") for n in range(1, 21)]
        assert processes == 20
        fired = [driver.statistics()[("minutely", "fired")] for _, driver, _ in made]
        assert sum(fired) == 20
    finally:
        for _, driver, store in made:
            driver.stop()
            store.close()
