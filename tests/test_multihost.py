"""Two runtimes on two "hosts": network namespaces joined by a veth pair, CURVE on.

The addresses 10.77.0.1 and 10.77.0.2 exist only inside the namespaces this
test creates; no traffic leaves them. The traffic itself is driven from
inside namespace A by ``tests/multihost_driver.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.network import TierdProcess, echo_level, network_config, to_toml
from tests.topology import daemon
from tierd.messaging._transport.security import generate_key_pair

REPO = Path(__file__).resolve().parents[1]
ADDRESS_A, ADDRESS_B = "10.77.0.1", "10.77.0.2"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=10)


def _why_no_namespaces() -> str | None:
    """Why this machine cannot make network namespaces (tried once, at collection), or None."""
    if shutil.which("ip") is None:
        return "iproute2 ('ip') is not installed"
    probe = f"tierd-probe-{os.getpid()}"
    result = _ip("netns", "add", probe, check=False)
    if result.returncode != 0:
        return f"'ip netns add' is not permitted here: {result.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


_NO_NAMESPACES = _why_no_namespaces()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(_NO_NAMESPACES is not None, reason=_NO_NAMESPACES or ""),
]


@pytest.fixture
def namespaces():
    """Namespaces A and B joined by a veth pair; removed afterwards even if the test fails."""
    tag = f"{os.getpid() % 100000}"
    names = {"a": f"tierd-a-{tag}", "b": f"tierd-b-{tag}"}
    veths = {"a": f"tdva{tag}", "b": f"tdvb{tag}"}
    made: list[str] = []
    try:
        for name in names.values():
            _ip("netns", "add", name)
            made.append(name)
        _ip("link", "add", veths["a"], "type", "veth", "peer", "name", veths["b"])
        for side, address in (("a", ADDRESS_A), ("b", ADDRESS_B)):
            _ip("link", "set", veths[side], "netns", names[side])
            _ip("-n", names[side], "addr", "add", f"{address}/24", "dev", veths[side])
            _ip("-n", names[side], "link", "set", veths[side], "up")
            _ip("-n", names[side], "link", "set", "lo", "up")
        yield names, veths
    finally:
        for name in made:  # deleting a namespace deletes its end of the veth pair too
            _ip("netns", "del", name, check=False)


def test_two_hosts_survive_a_link_outage(namespaces, tmp_path):
    """Across a 3 s link outage every accepted message arrives once; expired requests time out."""
    names, veths = namespaces
    keys = {name: generate_key_pair(tmp_path / name, name) for name in ("a", "b", "client")}
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    for public, _secret in keys.values():
        shutil.copy(public, allowed)
    fast = {"heartbeat_interval": 0.2, "heartbeat_liveness": 3, "reconnect_interval_max": 1.0}
    configs = {
        "a": network_config(
            f"tcp://{ADDRESS_A}:5555",
            echo_level(1, daemon("relay", "Relay", options={"to": "echo@2"})),
            name="host-a", curve_secret_key=str(keys["a"][1]), curve_allowed_clients=str(allowed),
            peers=[{"endpoint": f"tcp://{ADDRESS_B}:5555", "levels": [2],
                    "server_key": str(keys["b"][0]), **fast}],
        ),
        "b": network_config(
            f"tcp://{ADDRESS_B}:5555",
            echo_level(2, daemon("relay", "Relay", options={"to": "echo@1"})),
            name="host-b", curve_secret_key=str(keys["b"][1]), curve_allowed_clients=str(allowed),
            peers=[{"endpoint": f"tcp://{ADDRESS_A}:5555", "levels": [1],
                    "server_key": str(keys["a"][0]), **fast}],
        ),
    }  # fmt: skip
    processes = []
    try:
        for side, config in configs.items():
            path = tmp_path / f"host-{side}.toml"
            path.write_text(to_toml(config))
            prefix = ["ip", "netns", "exec", names[side]]
            processes.append(TierdProcess(path, prefix).start())
        settings = {
            "endpoint": f"tcp://{ADDRESS_A}:5555",
            "server_key": str(keys["a"][0]),
            "client_key": str(keys["client"][1]),
            "veth": veths["a"],
            "outage": 3.0,
        }
        driver = subprocess.run(
            ["ip", "netns", "exec", names["a"], sys.executable, "-m", "tests.multihost_driver",
             json.dumps(settings)],
            capture_output=True, text=True, timeout=50, cwd=REPO, check=False,
        )  # fmt: skip
        logs = "\n".join(process.output()[-3000:] for process in processes)
        assert driver.returncode == 0, driver.stderr[-3000:] + logs
        outcome = json.loads(driver.stdout.strip().splitlines()[-1])
    finally:
        for process in processes:
            process.kill()
    assert outcome["before"] == [0, 1, 2]
    assert outcome["timeouts"] == ["RequestTimeout"] * 3
    assert outcome["seen_up_after"] >= 3.0  # the link really was down that long
    assert outcome["patient"] == {"reply": "patient"}
    assert outcome["after"] == "after"
    accepted, delivered = outcome["accepted"], outcome["delivered"]
    assert len(accepted) > 100
    assert len(delivered) == len(set(delivered)), "a message was delivered twice"
    assert sorted(delivered) == sorted(accepted), "an accepted message was lost"
