"""``tierd run`` as an operator runs it: banner, metrics, signals, a second instance."""

from __future__ import annotations

import json
import signal
import time
from typing import TYPE_CHECKING

import pytest

from tests.metrics_helpers import scrape, value
from tests.processes import CONFIGS, Tierd, free_port
from tierd.testing import wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.slow


@pytest.fixture
def tierd() -> Iterator[type[Tierd]]:
    """Start ``tierd`` subprocesses; any still running after the test is killed."""
    started: list[Tierd] = []

    class Tracked(Tierd):
        def __init__(self, *args: str) -> None:
            super().__init__(*args)
            started.append(self)

    yield Tracked
    for process in started:
        process.kill()


def _loopback(*args: str) -> list[str]:
    """``args`` with a free metrics port and a free endpoint, so tests never clash."""
    return [*args, "--metrics", "127.0.0.1:0", "--endpoint", f"tcp://127.0.0.1:{free_port()}"]


def test_default_topology_runs_serves_metrics_and_exits_0_on_sigterm(tierd):
    """`tierd run` with no config announces the default topology, serves metrics, exits 0."""
    run = tierd("run", *_loopback())
    run.wait_for_line(r"^tierd 'default' running the default topology: levels 1, 2$")
    address = run.metrics_address()
    run.wait_for_line(r"try:\s+tierd request relay@1 '\{\"hello\": \"world\"\}'")
    samples = scrape(address)
    assert value(samples, "tierd_runtime_info", name="default", version="0.1.0") == 1
    assert value(samples, "tierd_daemon_state", level=2, daemon="echo", state="idle") == 1
    assert run.finish(signal.SIGTERM) == 0
    assert any("runtime_stopped" in line for line in run.stderr)


def test_ctrl_c_stops_gracefully_with_exit_0(tierd):
    """SIGINT (Ctrl-C) drains and exits 0, saying that it stops."""
    run = tierd("run", str(CONFIGS / "pipeline.toml"), *_loopback())
    run.metrics_address()
    assert run.finish(signal.SIGINT) == 0
    assert any("stopping" in line for line in run.stderr)


def test_second_run_on_the_same_metrics_port_fails_and_leaves_the_first_alone(tierd):
    """A second `tierd run` on a taken metrics port exits 1 at once; the first keeps serving."""
    first = tierd("run", *_loopback())
    address = first.metrics_address()
    second = tierd("run", "--metrics", address, "--endpoint", f"tcp://127.0.0.1:{free_port()}")
    assert second.finish(sig=None, timeout=20) == 1
    assert any(f"cannot serve metrics on {address}" in line for line in second.stderr)
    assert not any("Traceback" in line for line in second.stderr)
    assert value(scrape(address), "tierd_runtime_info", name="default", version="0.1.0") == 1
    assert first.finish(signal.SIGTERM) == 0


def test_json_logs_of_a_running_runtime_carry_its_name_on_every_line(tierd):
    """With `--log-format json` every stderr log line is a JSON object naming the runtime."""
    run = tierd("run", "--log-format", "json", "--log-level", "debug", *_loopback())
    run.metrics_address()
    run.wait_for_line(r'"event": "runtime_started"', stream="err")
    assert run.finish(signal.SIGTERM) == 0
    records = [json.loads(line) for line in run.stderr if line.startswith("{")]
    assert [line for line in run.stderr if not line.startswith("{")] == [
        "tierd: stopping: draining (Ctrl-C again to exit at once)"
    ]
    events = [record["event"] for record in records]
    assert "runtime_started" in events
    assert "runtime_stopped" in events
    for record in records:
        assert record["runtime"] == "default"
        assert {"timestamp", "level", "event"} <= record.keys()


def test_second_ctrl_c_exits_at_once_without_draining(tierd, tmp_path):
    """During a long drain a second Ctrl-C ends the process at once with status 130."""
    config = tmp_path / "busy.toml"
    config.write_text(
        '[runtime]\nname = "busy"\ngrace_period = 60\n'
        '[[levels]]\nlevel = 1\n[[levels.daemons]]\nid = "busy"\nclass = "tests.daemons:Busy"\n'
    )
    run = tierd("run", str(config), *_loopback())
    address = run.metrics_address()
    working = {"level": 1, "daemon": "busy", "state": "working"}
    wait_until(lambda: value(scrape(address), "tierd_daemon_state", **working) == 1, timeout=10)
    run.process.send_signal(signal.SIGINT)
    run.wait_for_line("stopping: draining", stream="err")
    started = time.monotonic()
    assert run.finish(signal.SIGINT, timeout=10) == 130
    assert time.monotonic() - started < 5
    assert not any("runtime_stopped" in line for line in run.stderr)
