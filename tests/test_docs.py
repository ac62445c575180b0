"""The operator docs: the Grafana dashboard is import-ready; every metric is documented."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from tests.metrics_helpers import parse
from tests.process.test_runtime import config
from tests.processes import ROOT

if TYPE_CHECKING:
    from pathlib import Path

DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"
OPERATIONS = ROOT / "docs" / "operations.md"


def dashboard_expressions() -> list[str]:
    """Every PromQL expression of the dashboard's panels."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


def exported_families(make_runtime, tmp_path: Path) -> set[str]:
    """The sample names a running runtime exports, after one process ran."""
    topology = config(tmp_path, {"kind": "greet", "class": "tests.process.kinds:Greet"})
    rt = make_runtime(topology)
    rt.processes.wait(rt.processes.submit("greet", "ann"), timeout=10)
    return {name for name, _labels in parse(rt.metrics.exposition().decode())}


def test_dashboard_is_import_ready_json():
    """The dashboard parses, asks for its Prometheus data source, and its panels are well formed."""
    board = json.loads(DASHBOARD.read_text())
    assert board["__inputs"][0]["pluginId"] == "prometheus"
    assert board["uid"] == "tierd-overview"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert {"x", "y", "w", "h"} <= panel["gridPos"].keys()
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}"


def test_dashboard_shows_what_operators_watch():
    """Queue depth by level and priority, dispatch p50/p99, timeouts, restarts, daemon states."""
    text = "\n".join(dashboard_expressions())
    assert "sum by (level, priority) (tierd_queue_depth" in text
    assert "histogram_quantile(0.5, sum by (le, level) (rate(tierd_dispatch_latency_seconds" in text
    assert (
        "histogram_quantile(0.99, sum by (le, level) (rate(tierd_dispatch_latency_seconds" in text
    )
    assert "tierd_message_timeouts_total" in text
    assert "tierd_daemon_restarts_total" in text
    assert "tierd_daemon_state" in text


def test_dashboard_shows_process_panels():
    """Processes by status, finished rate by status, step p95 by step, recoveries."""
    text = "\n".join(dashboard_expressions())
    assert "sum by (kind, status) (tierd_processes{" in text
    assert "sum by (kind, status) (rate(tierd_processes_finished_total{" in text
    assert (
        "histogram_quantile(0.95, sum by (le, kind, step) "
        "(rate(tierd_process_step_duration_seconds_bucket{" in text
    )
    assert "tierd_processes_recovered_total" in text


def test_dashboard_uses_only_exported_metrics(make_runtime, tmp_path):
    """Every tierd_ metric the dashboard queries is exported (peers and frames once seen)."""
    exported = exported_families(make_runtime, tmp_path) | {
        "tierd_peer_up",
        "tierd_rejected_frames_total",
    }
    used = set(re.findall(r"\btierd_[a-z_]+", "\n".join(dashboard_expressions())))
    assert used <= exported


def test_operations_doc_lists_every_metric(make_runtime, tmp_path):
    """docs/operations.md has a table row for every tierd_ metric family."""
    doc = OPERATIONS.read_text()
    families = {
        re.sub(r"_(bucket|count|sum)$", "", name)
        for name in exported_families(make_runtime, tmp_path)
        if name.startswith("tierd_")
    }
    families |= {"tierd_peer_up", "tierd_rejected_frames_total"}
    missing = sorted(name for name in families if f"| `{name}`" not in doc)
    assert missing == []
