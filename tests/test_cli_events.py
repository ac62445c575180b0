"""``tierd events`` and ``tierd status --watch`` against a real ``tierd run``, as users run them."""

from __future__ import annotations

import json
import signal
import time

import pytest

import tierd
from tests.network import echo_level, endpoint, network_config, to_toml
from tests.processes import run_tierd

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


@pytest.fixture
def running(tierd_cli, tmp_path):
    """A runtime with live events on, running Three; yields its endpoint."""
    address = endpoint()
    config = network_config(
        address, echo_level(1), events=endpoint(), data_dir=str(tmp_path / "data")
    )
    config["processes"] = {
        "kinds": [
            {"kind": "three", "class": "tests.process.kinds:Three"},
            {"kind": "nap", "class": "tests.process.kinds:Nap"},
        ]
    }
    path = tmp_path / "events.toml"
    path.write_text(to_toml(config))
    server = tierd_cli("run", str(path), "--log-level", "warning")
    server.wait_for_line(r"live events:\s+tcp://127.0.0.1:\d+")
    return address


def _submit_until_seen(client: tierd.Client, follower, pattern: str) -> str:
    """Submit processes until the follower prints a line for one (its subscription is live)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pid = client.processes.submit("three", 1)
        try:
            follower.wait_for_line(pattern.format(pid=pid), timeout=1)
        except AssertionError:
            continue
        return pid
    raise AssertionError(f"tierd events printed nothing: {follower.stdout} {follower.stderr}")


def test_tierd_events_prints_a_line_per_event_and_ctrl_c_exits_cleanly(running, tierd_cli):
    """One readable line per event of a submitted process; Ctrl-C: exit 130, no traceback."""
    follower = tierd_cli("events", "process.", "--endpoint", running)
    follower.wait_for_line(r"following process\. at tcp://", stream="err")
    with tierd.Client(running) as client:
        pid = _submit_until_seen(client, follower, r"process\.three\.{pid}\s+process_completed")
    lines = [line for line in follower.stdout if pid in line]
    assert any("step_started  step=add  attempt=1" in line for line in lines), lines
    assert any("step_completed  step=text" in line for line in lines), lines
    assert follower.finish(signal.SIGINT) == 130
    assert not any("Traceback" in line for line in follower.stderr)


def test_tierd_events_json_prints_one_event_per_line(running, tierd_cli):
    """--json: every line is the event map, topic and seq included."""
    follower = tierd_cli("events", "process.three.", "--json", "--endpoint", running)
    follower.wait_for_line("following", stream="err")
    with tierd.Client(running) as client:
        pid = _submit_until_seen(client, follower, r'"process_id": "{pid}".*process_completed')
    events = [json.loads(line) for line in follower.stdout]
    mine = [e for e in events if e["process_id"] == pid]
    assert [e["seq"] for e in mine] == list(range(mine[0]["seq"], mine[-1]["seq"] + 1))
    assert all(e["topic"] == f"process.three.{pid}" for e in mine)
    follower.finish(signal.SIGINT)


def test_tierd_events_without_a_runtime_says_so_in_one_line():
    """Nothing at the endpoint: one line naming the endpoint, exit 1."""
    address = endpoint()
    done = run_tierd("events", "--endpoint", address, "--timeout", "0.5")
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("tierd events: RequestTimeout")
    assert address in lines[0]


def test_tierd_events_against_a_runtime_without_events_says_how_to_turn_them_on(
    tierd_cli, tmp_path
):
    """runtime.events is "": one line saying to set it, exit 1."""
    address = endpoint()
    path = tmp_path / "quiet.toml"
    path.write_text(to_toml(network_config(address, echo_level(1))))
    server = tierd_cli("run", str(path), "--log-level", "warning")
    server.wait_for_line("running")
    done = run_tierd("events", "--endpoint", address)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"tierd events: the runtime at {address} publishes no events: "
        'set runtime.events (e.g. "tcp://127.0.0.1:5556") in its config'
    )


def test_tierd_status_watch_with_json_is_a_usage_error():
    """--watch and --json together: one line, exit 2."""
    done = run_tierd("status", "--watch", "--json", "--endpoint", endpoint())
    assert (done.returncode, done.stderr.strip()) == (
        2,
        "tierd status: --watch redraws the table; --json prints once: pick one",
    )


def test_tierd_status_watch_redraws_in_place(running, tierd_cli, monkeypatch):
    """--watch: the table is drawn again as the counters move; Ctrl-C exits 130."""
    monkeypatch.setenv("FORCE_COLOR", "1")  # a terminal, as a user's: redraws in place
    watcher = tierd_cli("status", "--watch", "--interval", "0.1", "--endpoint", running)
    watcher.wait_for_line(r"level 1: .*processed 0")
    with tierd.Client(running) as client:
        assert client.request("echo@1", "hi", timeout=5) == "hi"
    watcher.wait_for_line(r"level 1: .*processed 1")
    assert watcher.finish(signal.SIGINT) == 130
    assert not any("Traceback" in line for line in watcher.stderr)


def test_process_watch_follows_the_events_to_the_end(running):
    """`tierd process watch` against a runtime that publishes events: bars, then the outcome."""
    with tierd.Client(running) as client:
        pid = client.processes.submit("nap", {"seconds": 0.5})
    done = run_tierd("process", "watch", pid, "--endpoint", running)
    assert done.returncode == 0, done.stderr
    assert "first" in done.stdout
    assert "second" in done.stdout
    assert f"process {pid} completed" in done.stdout
