"""A real Prometheus scrapes a running runtime; promtool lints the exposition.

Debian's ``prometheus`` package is installed by ``scripts/install-prometheus``
when the binaries are missing (that needs root or sudo and the package registry).
"""

from __future__ import annotations

import json
import subprocess
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest

from tests.metrics_helpers import fetch, scrape, serve_prometheus, value
from tests.processes import free_port
from tierd.testing import wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.slow

SCRAPE_INTERVAL = "500ms"


@pytest.fixture
def traffic(tierd_cli, make_client, tmp_path: Path) -> str:
    """A `tierd run` subprocess after a known sequence of messages; its metrics ``host:port``.

    Through the ZeroMQ client: 3 high-priority requests to echo@1, one notification
    that keeps sleeper@1 WORKING, and 4 background notifications queued behind it.
    """
    config = tmp_path / "prom.toml"
    config.write_text(
        '[runtime]\nname = "prom"\ngrace_period = 0.5\n'
        "[[levels]]\nlevel = 1\n"
        '[[levels.daemons]]\nid = "echo"\nclass = "tierd.actors.builtin:Echo"\n'
        '[[levels.daemons]]\nid = "sleeper"\nclass = "tierd.actors.builtin:Sleeper"\n'
    )
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    run = tierd_cli("run", str(config), "--metrics", "127.0.0.1:0", "--endpoint", endpoint)
    address = run.metrics_address()
    client = make_client(endpoint)
    for n in range(3):
        assert client.request("echo@1", n, timeout=10, priority="high") == n
    client.send("sleeper@1", {"seconds": 30})
    for _ in range(4):
        client.send("sleeper@1", {"seconds": 0}, priority="background")
    wait_until(lambda: value(scrape(address), "tierd_queue_depth", level=1, priority=20) == 4)
    return address


@pytest.fixture
def prometheus(prometheus_bin, traffic, tmp_path: Path) -> Iterator[str]:
    """A Prometheus on a free loopback port scraping ``traffic``; yields its base URL."""
    with serve_prometheus(prometheus_bin[0], tmp_path, traffic, SCRAPE_INTERVAL) as base:
        yield base


def _query(base: str, promql: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback http
        body = json.load(response)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _value_of(base: str, promql: str) -> float | None:
    result = _query(base, promql)
    return float(result[0]["value"][1]) if len(result) == 1 else None


def test_prometheus_sees_received_counts_and_queue_depth(prometheus):
    """Through Prometheus's query API: received counts and queue depth have their known values."""
    wait_until(lambda: _value_of(prometheus, 'up{job="tierd"}') == 1, timeout=20, interval=0.2)
    received = 'tierd_messages_received_total{level="1",kind="request",priority="5"}'
    wait_until(lambda: _value_of(prometheus, received) == 3, timeout=20, interval=0.2)
    depth = 'tierd_queue_depth{level="1",priority="20"}'
    wait_until(lambda: _value_of(prometheus, depth) == 4, timeout=20, interval=0.2)
    notifications = 'sum(tierd_messages_received_total{level="1",kind="notification"})'
    assert _value_of(prometheus, notifications) == 5
    assert _value_of(prometheus, 'sum(tierd_queue_depth{level="1"})') == 4
    working = 'tierd_daemon_state{level="1",daemon="sleeper",state="working"}'
    assert _value_of(prometheus, working) == 1
    p99 = "histogram_quantile(0.99, sum by (le) (tierd_dispatch_latency_seconds_bucket))"
    quantile = _value_of(prometheus, p99)
    assert quantile is not None
    assert 0 <= quantile < 1


def test_promtool_finds_nothing_to_lint_in_the_exposition(prometheus_bin, traffic):
    """`promtool check metrics` accepts the exposition with no warning at all."""
    done = subprocess.run(
        [prometheus_bin[1], "check", "metrics"],
        input=fetch(traffic).encode(), capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")


def test_every_dashboard_query_is_valid_promql(prometheus_bin, tmp_path):
    """`promtool check rules` parses every dashboard expression, Grafana variables filled in."""
    from tests.test_docs import dashboard_expressions

    rules = tmp_path / "rules.yml"
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    for number, expr in enumerate(dashboard_expressions()):
        filled = expr.replace("$__rate_interval", "1m").replace('"$job"', '".*"')
        filled = filled.replace('"$instance"', '".*"').replace('"$level"', '".*"')
        lines += [f"      - record: dashboard:expr{number}", f"        expr: {json.dumps(filled)}"]
    rules.write_text("\n".join(lines) + "\n")
    done = subprocess.run(
        [prometheus_bin[1], "check", "rules", str(rules)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
