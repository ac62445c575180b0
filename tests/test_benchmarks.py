"""The benchmark script still runs: tiny sizes, no assertion on speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_quick_benchmark_runs_and_writes_results(tmp_path):
    """`python -m benchmarks.bench --quick` prints a table and writes every row with a ratio."""
    output = tmp_path / "results.json"
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench", "--quick", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=230,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "in-process W1" in run.stdout
    report = json.loads(output.read_text())
    workloads = {row["workload"] for row in report["rows"]}
    assert {"in-process W1", "in-process W2", "in-process W3"} <= workloads
    assert all(row["ratio"] > 0 for row in report["rows"])
    assert len(report["scaling"]["dispatch_us"]) == len(report["scaling"]["sizes"])
    assert report["scaling"]["memory_bytes_per_message"] > 0
    stores = report["stores"]
    assert "skipped" in stores or stores["S2 three runtimes"]["processes_per_s"] > 0
