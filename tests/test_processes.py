"""Runtimes as ``tierd run`` subprocesses: the client, the CLI, and a peer killed with SIGKILL."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import tierd
from tests.network import (
    FAST_PEER,
    TierdProcess,
    echo_level,
    endpoint,
    network_config,
    to_toml,
    wait_ready,
)
from tests.topology import daemon, level
from tierd.config import DEFAULT_TOPOLOGY, load_config, override_runtime
from tierd.testing import wait_until

pytestmark = pytest.mark.slow

LEVEL_2 = level(
    2, daemon("echo", "Echo"), daemon("recorder", "Recorder"), daemon("sleeper", "Sleeper"),
    daemon("crasher", "Crasher", restart={"initial_delay": 0.05}),
)  # fmt: skip


@pytest.fixture
def run_tierd(tmp_path):
    """Start ``tierd run`` subprocesses from config dicts; each is killed after the test."""
    processes: list[TierdProcess] = []

    def run(config: dict, name: str = "tierd", ready: str | None = "echo@2") -> TierdProcess:
        path = tmp_path / f"{name}.toml"
        path.write_text(to_toml(config))
        process = TierdProcess(path).start()
        processes.append(process)
        if ready is not None:
            wait_ready(config["runtime"]["endpoint"], ready)
        return process

    yield run
    for process in processes:
        process.kill()


def _cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tierd.cli", *args], capture_output=True, text=True, timeout=timeout,
        check=False,
    )  # fmt: skip


def test_client_talks_to_a_tierd_run_process(run_tierd):
    """A Client requests, sends and asks a ``tierd run`` process for status; SIGTERM exits 0."""
    address = endpoint()
    process = run_tierd(network_config(address, echo_level(1), LEVEL_2))
    with tierd.Client(address) as client:
        assert client.request("echo@2", {"x": [1, "two"]}, timeout=5) == {"x": [1, "two"]}
        ids = [client.send("recorder@1", n, priority="low") for n in range(5)]
        assert len(set(ids)) == 5
        assert wait_until(lambda: client.request("recorder@1", {"op": "count"}, timeout=5) == 5)
        with pytest.raises(tierd.RemoteError):
            client.request("crasher@2", None, timeout=5)
        status = client.status()
    assert [entry["level"] for entry in status["levels"]] == [1, 2]
    recorder = next(d for d in status["levels"][0]["daemons"] if d["daemon"] == "recorder")
    assert recorder["processed"] >= 6
    assert process.stop() == 0


def test_cli_commands_and_exit_codes(run_tierd):
    """The send, request and status commands print results; failures exit non-zero in one line."""
    address = endpoint()
    run_tierd(network_config(address, LEVEL_2))
    on = ("--endpoint", address)
    ok = _cli("request", "echo@2", '{"x": 1}', *on)
    assert (ok.returncode, json.loads(ok.stdout)) == (0, {"x": 1})
    sent = _cli("send", "recorder@2", '"hello"', "--priority", "high", *on)
    assert sent.returncode == 0
    assert len(sent.stdout.strip()) == 32
    table = _cli("status", *on)
    assert table.returncode == 0
    assert "echo@2" in table.stdout
    assert "IDLE" in table.stdout
    as_json = _cli("status", "--json", *on)
    assert json.loads(as_json.stdout)["levels"][0]["level"] == 2
    failures = {
        "unknown": _cli("request", "nope@2", *on),
        "remote error": _cli("request", "crasher@2", "1", *on),
        "timeout": _cli("request", "sleeper@2", '{"seconds": 2}', "--timeout", "0.3", *on),
        "no runtime": _cli("request", "echo@2", "--timeout", "0.3", "--endpoint", endpoint()),
    }
    for name, result in failures.items():
        assert result.returncode == 1, name
        assert result.stdout == "", name
        assert len(result.stderr.strip().splitlines()) == 1, name
    assert "UnknownRecipient" in failures["unknown"].stderr
    assert "RemoteError" in failures["remote error"].stderr
    assert "RequestTimeout" in failures["timeout"].stderr
    assert "no answer at all" in failures["no runtime"].stderr
    bad_json = _cli("request", "echo@2", "{nope", *on)
    assert bad_json.returncode == 2
    assert "not JSON" in bad_json.stderr


def test_cli_generates_a_key_pair(tmp_path):
    """The keys generate command writes a public and a private key file; never overwrites."""
    result = _cli("keys", "generate", str(tmp_path / "keys"), "--name", "host-a")
    assert result.returncode == 0
    assert (tmp_path / "keys" / "host-a.key").exists()
    assert (tmp_path / "keys" / "host-a.key_secret").stat().st_mode & 0o077 == 0
    again = _cli("keys", "generate", str(tmp_path / "keys"), "--name", "host-a")
    assert again.returncode == 1


def test_a_second_tierd_run_on_the_same_endpoint_fails_clearly(run_tierd, tmp_path):
    """A second tierd run on a bound endpoint exits non-zero naming it; the first keeps serving."""
    address = endpoint()
    run_tierd(network_config(address, LEVEL_2))
    second = tmp_path / "second.toml"
    second.write_text(to_toml(network_config(address, LEVEL_2, name="second")))
    result = _cli("run", str(second))
    assert result.returncode == 1
    assert f"cannot listen on {address}" in result.stderr
    with tierd.Client(address) as client:
        assert client.request("echo@2", "still me", timeout=5) == "still me"


def test_a_peer_killed_and_restarted_gets_the_held_messages_once(run_tierd):
    """Notifications for a SIGKILLed peer are held, then delivered exactly once when it is back."""
    front_address, back_address = endpoint(), endpoint()
    back_config = network_config(back_address, LEVEL_2, name="back")
    back = run_tierd(back_config, "back")
    peer = {"endpoint": back_address, "levels": [2], **FAST_PEER}
    run_tierd(network_config(front_address, echo_level(1), peers=[peer], name="front"), "front")
    with tierd.Client(front_address) as front, tierd.Client(back_address) as direct:
        for n in range(5):
            front.send("recorder@2", ("before", n))
        assert wait_until(lambda: direct.request("recorder@2", {"op": "count"}, timeout=5) == 5)
        back.kill()
        wait_until(lambda: not front.status()["peers"][0]["up"], timeout=10)
        held = [front.send("recorder@2", ("held", n)) for n in range(10)]
        assert len(held) == 10
        assert front.status()["peers"][0]["held"] == 10
        with pytest.raises(tierd.RequestTimeout):
            front.request("echo@2", "while down", timeout=0.3)
        run_tierd(back_config, "back-again")
        expected = [["held", n] for n in range(10)]
        assert wait_until(
            lambda: direct.request("recorder@2", {"op": "dump"}, timeout=5) == expected, timeout=15
        )
        assert front.request("echo@2", "back", timeout=5) == "back"
        assert direct.request("recorder@2", {"op": "count"}, timeout=5) == 10


@pytest.mark.timeout(60)
def test_the_default_topology_runs_its_demo_process_and_batch(tmp_path):
    """What the README tells a new user to try on `scripts/run` works: demo and demo_batch."""
    config = override_runtime(
        load_config(DEFAULT_TOPOLOGY), "test", endpoint="", events="", http="", metrics="",
        data_dir=str(tmp_path),
    )  # fmt: skip
    with tierd.Runtime(config) as rt:
        demo = rt.processes.submit("demo", {"seconds": 0.1})
        batch = rt.processes.submit(
            "demo_batch", {"items": [{"seconds": 0.1}, {"seconds": 0.1}, {"seconds": "x"}]}
        )
        assert rt.processes.wait(demo, timeout=30)["result"] == {"slept": 0.1}
        final = rt.processes.wait(batch, timeout=30)
        assert [s["name"] for s in rt.schedules.list()] == ["minutely-note"]
    assert (final["status"], final["completed_items"], final["failed_items"]) == ("completed", 2, 1)
