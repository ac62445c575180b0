"""``tierd run`` as an operator runs it: banner, metrics, signals, a second instance."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from tests.metrics_helpers import scrape, value
from tests.processes import CONFIGS, Tierd, free_port
from tierd.testing import wait_until

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow


def _loopback(*args: str) -> list[str]:
    """``args`` with free metrics, HTTP and events ports and a free endpoint: no clashes."""
    return [
        *args, "--metrics", "127.0.0.1:0", "--http", "127.0.0.1:0",
        "--endpoint", f"tcp://127.0.0.1:{free_port()}", "--events", f"tcp://127.0.0.1:{free_port()}",
    ]  # fmt: skip


def _directory(parent: Path, name: str) -> Path:
    """A working directory of its own for one runtime: its process store is its own."""
    path = parent / name
    path.mkdir()
    return path


def _endpoint(run: Tierd) -> str:
    """The endpoint the banner announces for clients."""
    return run.wait_for_line(r"clients and peers:\s+(\S+)").group(1)


def test_default_topology_runs_answers_and_exits_0_on_sigterm(tierd_cli):
    """`tierd run` with no config announces the default topology, answers, exits 0 on SIGTERM."""
    run = tierd_cli("run", *_loopback())
    run.wait_for_line(r"^tierd 'default' running the default topology: levels 1, 2$")
    address = run.metrics_address()
    endpoint = _endpoint(run)
    run.wait_for_line(r"try:\s+tierd request relay@1 '\{\"hello\": \"world\"\}' --endpoint tcp://")
    done = subprocess.run(
        [sys.executable, "-m", "tierd.cli", "request", "relay@1", '{"hello": "world"}',
         "--endpoint", endpoint, "--timeout", "10"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (0, '{"hello": "world"}\n'), done.stderr
    samples = scrape(address)
    assert value(samples, "tierd_runtime_info", name="default", version="0.1.0") == 1
    assert value(samples, "tierd_messages_completed_total", level=2, outcome="ok") == 1
    assert value(samples, "tierd_daemon_state", level=2, daemon="echo", state="idle") == 1
    assert run.finish(signal.SIGTERM) == 0
    assert any("runtime_stopped" in line for line in run.stderr)


def test_ctrl_c_stops_gracefully_with_exit_0(tierd_cli):
    """SIGINT (Ctrl-C) drains and exits 0, saying that it stops."""
    run = tierd_cli("run", str(CONFIGS / "pipeline.toml"), *_loopback())
    run.metrics_address()
    assert run.finish(signal.SIGINT) == 0
    assert any("stopping" in line for line in run.stderr)


def test_second_run_on_the_same_metrics_port_fails_and_leaves_the_first_alone(tierd_cli, tmp_path):
    """A second `tierd run` on a taken metrics port exits 1 at once; the first keeps serving."""
    first = tierd_cli("run", *_loopback(), cwd=_directory(tmp_path, "first"))
    address = first.metrics_address()
    second = tierd_cli(
        "run", "--metrics", address, "--endpoint", f"tcp://127.0.0.1:{free_port()}",
        "--events", "", "--http", "", cwd=_directory(tmp_path, "second"),
    )  # fmt: skip
    assert second.finish(sig=None, timeout=20) == 1
    assert any(f"cannot serve metrics on {address}" in line for line in second.stderr)
    assert not any("Traceback" in line for line in second.stderr)
    assert value(scrape(address), "tierd_runtime_info", name="default", version="0.1.0") == 1
    assert first.finish(signal.SIGTERM) == 0


def test_second_run_on_the_same_endpoint_fails_and_leaves_the_first_alone(
    tierd_cli, make_client, tmp_path
):
    """A second `tierd run` on a taken endpoint exits 1 at once; the first keeps answering."""
    first = tierd_cli("run", *_loopback(), cwd=_directory(tmp_path, "first"))
    first.metrics_address()
    endpoint = _endpoint(first)
    second = tierd_cli(
        "run", "--metrics", "127.0.0.1:0", "--endpoint", endpoint, "--events", "", "--http", "",
        cwd=_directory(tmp_path, "second"),
    )  # fmt: skip
    assert second.finish(sig=None, timeout=20) == 1
    assert any("cannot start" in line and endpoint in line for line in second.stderr)
    assert not any("Traceback" in line for line in second.stderr)
    assert make_client(endpoint).request("echo@2", "still here", timeout=10) == "still here"
    assert first.finish(signal.SIGTERM) == 0


def test_json_logs_carry_the_runtime_name_and_one_trace_id_across_a_relay(tierd_cli, make_client):
    """JSON logs: every line names the runtime; a relay and its echo share one trace id."""
    run = tierd_cli("run", "--log-format", "json", "--log-level", "debug", *_loopback())
    run.metrics_address()
    endpoint = _endpoint(run)
    assert make_client(endpoint).request("relay@1", {"x": 1}, timeout=10) == {"x": 1}
    assert run.finish(signal.SIGTERM) == 0
    records = [json.loads(line) for line in run.stderr if line.startswith("{")]
    assert [line for line in run.stderr if not line.startswith("{")] == [
        "tierd: stopping: draining (Ctrl-C again to exit at once)"
    ]
    events = [record["event"] for record in records]
    assert "runtime_started" in events
    assert "runtime_stopped" in events
    for record in records:
        assert record["runtime"] == "default", record
        assert {"timestamp", "level", "event"} <= record.keys()
    received = [r for r in records if r["event"] == "message_received"]
    assert [(r["tier"], r["daemon"]) for r in received] == [(1, "relay"), (2, "echo")]
    assert received[0]["trace_id"] == received[1]["trace_id"]


def test_second_ctrl_c_exits_at_once_without_draining(tierd_cli, tmp_path):
    """During a long drain a second Ctrl-C ends the process at once with status 130."""
    config = tmp_path / "busy.toml"
    config.write_text(
        '[runtime]\nname = "busy"\ngrace_period = 60\n'
        '[[levels]]\nlevel = 1\n[[levels.daemons]]\nid = "busy"\nclass = "tests.daemons:Busy"\n'
    )
    run = tierd_cli("run", str(config), *_loopback())
    address = run.metrics_address()
    working = {"level": 1, "daemon": "busy", "state": "working"}
    wait_until(lambda: value(scrape(address), "tierd_daemon_state", **working) == 1, timeout=10)
    run.process.send_signal(signal.SIGINT)
    run.wait_for_line("stopping: draining", stream="err")
    started = time.monotonic()
    assert run.finish(signal.SIGINT, timeout=10) == 130
    assert time.monotonic() - started < 5
    assert not any("runtime_stopped" in line for line in run.stderr)
