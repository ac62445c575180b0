"""Process stores: SQLite against PostgreSQL, and several runtimes sharing PostgreSQL.

- S1: N three-step processes (trivial steps), ``max_concurrent`` 64, one
  in-process runtime, submitted from one thread and waited for: processes per
  second on SQLite and on PostgreSQL, in the same run (and PostgreSQL with
  ``synchronous_commit`` off for tierd's sessions, set in the URL).
- S2: N three-step processes whose steps sleep 5 ms, ``max_concurrent`` 4 per
  runtime, written pending into one PostgreSQL database at once; processes per
  second until the last completes, with one ``tierd run`` and with three
  sharing the database (the ratio: the point of sharing a store).

The PostgreSQL server is a throwaway cluster (``tests/postgres.py``) with
``fsync`` and ``synchronous_commit`` on, as a production server runs;
Debian's binaries are installed by ``scripts/install-postgresql`` if missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import tierd
from tierd.config import parse_config
from tierd.processes._record import new_process_id
from tierd.processes._store import pack

ROOT = Path(__file__).resolve().parent.parent


class Sleepy(tierd.Process):
    """Three steps that each sleep 5 ms: I/O-bound work, limited by ``max_concurrent`` 4."""

    max_concurrent = 4

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
    threading.Event().wait(0.005)
    return data


def _config(data_dir: str, store: str) -> dict[str, Any]:
    return {
        "runtime": {"endpoint": "", "metrics": "", "data_dir": data_dir,
                    "log_level": "warning", "sweep_interval": 0.05},
        "levels": [{"level": 1, "daemons": [{"id": "echo", "class": "tierd.actors.builtin:Echo"}]}],
        "processes": {"store": store, "kinds": [
            {"kind": "trivial", "class": "benchmarks.processes:Trivial"},
        ]},
    }  # fmt: skip


def one_runtime(total: int, store: str) -> float:
    """S1: processes per second, first submit to last completion, on ``store`` ("" is SQLite)."""
    with (
        tempfile.TemporaryDirectory() as data,
        tierd.Runtime(parse_config(_config(data, store))) as rt,
    ):
        started = time.perf_counter()
        ids = [rt.processes.submit("trivial", i) for i in range(total)]
        for pid in ids:
            rt.processes.wait(pid, timeout=600)
        return total / (time.perf_counter() - started)


def _start_runtime(folder: Path, url: str, name: str) -> subprocess.Popen[str]:
    config = folder / f"{name}.toml"
    config.write_text(
        f'[runtime]\nname = "{name}"\nendpoint = ""\nmetrics = ""\n'
        f'data_dir = "{folder / name}"\nlog_level = "warning"\nsweep_interval = 0.05\n'
        "[[levels]]\nlevel = 1\n"
        '[[levels.daemons]]\nid = "echo"\nclass = "tierd.actors.builtin:Echo"\n'
        f'[processes]\nstore = "{url}"\n'
        '[[processes.kinds]]\nkind = "sleepy"\nclass = "benchmarks.stores:Sleepy"\n'
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "tierd.cli", "run", str(config)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stdout is not None
    for line in process.stdout:
        if "running" in line:
            break
    threading.Thread(target=process.stdout.read, daemon=True).start()  # drain the rest
    return process


def _write_pending(url: str, total: int) -> None:
    """``total`` pending ``sleepy`` processes in one transaction, and one NOTIFY."""
    import psycopg

    steps = pack(["one", "two", "three"])
    now = time.time()
    rows = [
        (new_process_id(now), "sleepy", "pending", 10, None, steps, pack(i), None, None, None,
         pack({}), now, None, None, 1)
        for i in range(total)
    ]  # fmt: skip
    with psycopg.connect(url) as db:
        db.cursor().executemany(
            "INSERT INTO processes (id, kind, status, priority, key, step_names, params, "
            "result, error, current_step, correlation, created_at, started_at, finished_at, "
            "seq) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
        db.execute("SELECT pg_notify('tierd_pending', 'sleepy')")


def shared_rate(server: Any, total: int, runtimes: int) -> dict[str, Any]:
    """S2: processes per second of ``runtimes`` ``tierd run``s sharing one database."""
    url = server.database()
    with tempfile.TemporaryDirectory() as folder:
        names = [chr(ord("a") + i) for i in range(runtimes)]
        started_runtimes = [_start_runtime(Path(folder), url, name) for name in names]
        try:
            started = time.perf_counter()
            _write_pending(url, total)
            while True:
                (done,) = server.query(
                    url, "SELECT count(*) FROM processes WHERE status = 'completed'"
                )[0]
                if done >= total:
                    break
                if time.perf_counter() - started > 600:
                    raise TimeoutError(f"only {done} of {total} completed")
                time.sleep(0.02)
            seconds = time.perf_counter() - started
            spread = dict(server.query(url, "SELECT owner, count(*) FROM processes GROUP BY 1"))
        finally:
            for process in started_runtimes:
                process.terminate()
            for process in started_runtimes:
                process.wait(30)
    return {"processes_per_s": total / seconds, "by_runtime": spread}


def measure(processes: int, shared: int) -> dict[str, Any]:
    """Every store figure, as one dict for the report; a reason string where none can run."""
    from tests.postgres import PostgresServer, find_binaries

    binaries = find_binaries()
    if isinstance(binaries, str):
        return {"skipped": binaries}
    server = PostgresServer(binaries, durable=True)
    try:
        figures: dict[str, Any] = {}
        figures["S1 SQLite processes/s"] = one_runtime(processes, "")
        figures["S1 PostgreSQL processes/s"] = one_runtime(processes, server.database())
        sqlite, postgresql = figures["S1 SQLite processes/s"], figures["S1 PostgreSQL processes/s"]
        figures["S1 ratio"] = postgresql / sqlite
        lazy = server.database() + "?options=-c%20synchronous_commit%3Doff"
        figures["S1 PostgreSQL synchronous_commit off"] = one_runtime(processes, lazy)
        one = shared_rate(server, shared, 1)
        three = shared_rate(server, shared, 3)
        figures["S2 one runtime"] = one
        figures["S2 three runtimes"] = three
        figures["S2 ratio"] = three["processes_per_s"] / one["processes_per_s"]
        return figures
    finally:
        server.stop()


def print_figures(figures: dict[str, Any], processes: int, shared: int) -> None:
    """The store figures, for people."""
    if "skipped" in figures:
        print(f"\nProcess stores: not measured: {figures['skipped']}")
        return
    print(f"\nProcess stores ({processes:,} three-step processes, one runtime, max_concurrent 64)")
    print(f"S1 SQLite {figures['S1 SQLite processes/s']:,.0f} processes/s, PostgreSQL "
          f"{figures['S1 PostgreSQL processes/s']:,.0f} processes/s "
          f"(ratio {figures['S1 ratio']:.2f}); with synchronous_commit off "
          f"{figures['S1 PostgreSQL synchronous_commit off']:,.0f} processes/s")  # fmt: skip
    one, three = figures["S2 one runtime"], figures["S2 three runtimes"]
    print(f"S2 {shared:,} processes, steps sleeping 5 ms, max_concurrent 4 per runtime: one "
          f"runtime {one['processes_per_s']:,.0f}/s, three sharing PostgreSQL "
          f"{three['processes_per_s']:,.0f}/s {three['by_runtime']}: "
          f"{figures['S2 ratio']:.2f}x (target >= 2x)")  # fmt: skip


if __name__ == "__main__":
    from tierd.logging import configure

    configure("console", "warning")
    quick = "--quick" in sys.argv
    sizes = (300, 300) if quick else (10_000, 3_000)
    print_figures(measure(*sizes), *sizes)
