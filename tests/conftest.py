from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
import zmq

import tierd
from tests import daemons
from tests.postgres import PostgresServer, find_binaries
from tests.processes import ROOT, Tierd
from tierd.testing import runtime_from_dict

if TYPE_CHECKING:
    from pathlib import Path

RuntimeFactory = Callable[..., tierd.Runtime]


@pytest.fixture
def make_runtime() -> Iterator[RuntimeFactory]:
    """Build and start runtimes from config dicts; every one is stopped after the test."""
    started: list[tierd.Runtime] = []

    def make(config: dict[str, Any], **kwargs: Any) -> tierd.Runtime:
        runtime = runtime_from_dict(config, **kwargs)
        runtime.start()
        started.append(runtime)
        return runtime

    yield make
    for gate in daemons.GATES.values():
        gate.set()  # let any Gate still waiting finish, so the runtime can stop
    for runtime in started:
        runtime.stop(grace_period=0)
    daemons.GATES.clear()
    daemons.ENTERED.clear()


@pytest.fixture(scope="session")
def prometheus_bin() -> tuple[str, str]:
    """The paths of ``prometheus`` and ``promtool``, installed first if they are missing."""
    if not (shutil.which("prometheus") and shutil.which("promtool")):
        done = subprocess.run(
            [str(ROOT / "scripts" / "install-prometheus")],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            pytest.fail(f"scripts/install-prometheus failed:\n{done.stdout}\n{done.stderr}")
    server, promtool = shutil.which("prometheus"), shutil.which("promtool")
    assert server is not None
    assert promtool is not None
    return server, promtool


@pytest.fixture(scope="session")
def chromium() -> tuple[str, str]:
    """The paths of ``chromium`` and ``chromedriver``, installed first if they are missing."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        done = subprocess.run(
            [str(ROOT / "scripts" / "install-chromium")],
            capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            pytest.fail(f"scripts/install-chromium failed:\n{done.stdout}\n{done.stderr}")
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert browser is not None
    assert driver is not None
    return browser, driver


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster for the whole run (installed first if missing), stopped at the end."""
    binaries = find_binaries()
    if isinstance(binaries, str):
        if os.environ.get("CI"):  # CI installs it (scripts/install-postgresql): a failure there
            pytest.fail(f"no PostgreSQL server to test against: {binaries}")
        # A machine without apt-get (or root) cannot install Debian's server: say so, per test.
        pytest.skip(f"no PostgreSQL server to test against: {binaries}")
    server = PostgresServer(binaries)
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a fresh, empty database on the session's PostgreSQL server."""
    return postgres_server.database()


@pytest.fixture
def make_client() -> Iterator[Callable[..., tierd.Client]]:
    """Open `tierd.Client`s; every one is closed (linger 0) after the test."""
    clients: list[tierd.Client] = []

    def make(address: str, **options: Any) -> tierd.Client:
        client = tierd.Client(address, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def gates() -> Iterator[None]:
    """Release and forget every Gate after the test, for tests that build their own runtimes."""
    yield
    for gate in daemons.GATES.values():
        gate.set()
    daemons.GATES.clear()
    daemons.ENTERED.clear()


@pytest.fixture
def tierd_cli() -> Iterator[type[Tierd]]:
    """Start ``tierd`` subprocesses; any still running after the test is killed."""
    started: list[Tierd] = []

    class Tracked(Tierd):
        def __init__(self, *args: str, cwd: Path | None = None) -> None:
            super().__init__(*args, cwd=cwd)
            started.append(self)

    yield Tracked
    for process in started:
        process.kill()


@pytest.fixture
def silent_router() -> Iterator[tuple[zmq.Socket[Any], str]]:
    """A ROUTER that receives what a client sends and never answers; and its endpoint."""
    context: zmq.Context[Any] = zmq.Context()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    yield router, f"tcp://127.0.0.1:{port}"
    router.close(linger=0)
    context.term()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """After the run, list the figures tests recorded with ``record_property`` (soak latency...)."""
    lines = [
        f"{report.nodeid}: "
        + ", ".join(f"{name}={value}" for name, value in report.user_properties)
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call" and getattr(report, "user_properties", None)
    ]
    if lines:
        terminalreporter.section("figures recorded by tests")
        for line in lines:
            terminalreporter.line(line)
