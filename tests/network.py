"""Helpers for network tests: free loopback ports, TOML files, and `tierd run` subprocesses."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import tierd
from tests import topology

FAST_PEER = {"heartbeat_interval": 0.1, "heartbeat_liveness": 3, "reconnect_interval_max": 0.5}
"""Peer settings that notice a dead peer in 0.3 s, for tests."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def endpoint(host: str = "127.0.0.1", port: int | None = None) -> str:
    """A ``tcp://`` endpoint; a free loopback port unless one is given."""
    return f"tcp://{host}:{port or free_port()}"


def network_config(
    address: str, *levels: dict[str, Any], peers: list[dict[str, Any]] = (), **runtime: Any
) -> dict[str, Any]:
    """A config dict that serves ``address``, with no metrics and a fast sweep."""
    section = {"endpoint": address, "metrics": "", "sweep_interval": 0.02, "grace_period": 0.5}
    section.update(runtime)
    return {"runtime": section, "levels": list(levels), "peers": list(peers)}


def echo_level(number: int, *extra: dict[str, Any]) -> dict[str, Any]:
    """A level with ``echo`` and ``recorder``, and whatever else is given."""
    return topology.level(
        number, topology.daemon("echo", "Echo"), topology.daemon("recorder", "Recorder"), *extra
    )


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML for {value!r}")


def to_toml(config: dict[str, Any]) -> str:
    """Write a config dict as TOML (tables, arrays of tables one level deep, inline values)."""
    lines: list[str] = []
    for key, value in config.items():
        if isinstance(value, dict):
            lines.append(f"[{key}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in value.items()]
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for table in value:
                nested = {k: v for k, v in table.items() if _is_tables(v)}
                lines.append(f"[[{key}]]")
                lines += [f"{k} = {_toml_value(v)}" for k, v in table.items() if k not in nested]
                for inner_key, inner_tables in nested.items():
                    for inner in inner_tables:
                        lines.append(f"[[{key}.{inner_key}]]")
                        lines += [f"{k} = {_toml_value(v)}" for k, v in inner.items()]
        elif not isinstance(value, list):
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _is_tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], dict)


class TierdProcess:
    """``tierd run CONFIG`` in a subprocess; `stop` or `kill` it, the test's finalizer does too.

    Args:
        config_path: the TOML file to run.
        prefix: argv before the ``tierd`` command, e.g. ``["ip", "netns", "exec", "ns1"]``.
    """

    def __init__(self, config_path: Path, prefix: list[str] | None = None) -> None:
        self.config_path = config_path
        self.prefix = prefix or []
        self.log_path = config_path.with_suffix(".log")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> TierdProcess:
        """Start the process (not waiting for it to be ready)."""
        command = [*self.prefix, sys.executable, "-m", "tierd.cli", "run", str(self.config_path)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        return self

    def kill(self) -> None:
        """SIGKILL: no clean-up, no goodbye."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not exit in ``timeout``; return its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def output(self) -> str:
        """What the process wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def wait_ready(address: str, target: str, timeout: float = 20.0, **client_options: Any) -> None:
    """Poll ``target`` with requests until the runtime at ``address`` answers.

    Raises:
        TimeoutError: no answer within ``timeout``.
    """
    deadline = time.monotonic() + timeout
    with tierd.Client(address, ack_timeout=0.5, **client_options) as client:
        while time.monotonic() < deadline:
            try:
                client.request(target, "ready?", timeout=0.5)
            except tierd.RequestTimeout:
                continue
            return
    raise TimeoutError(f"no runtime answered {target} at {address} within {timeout:g}s")
