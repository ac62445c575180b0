from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.web import kinds

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    import tierd
    from tests.conftest import RuntimeFactory

SEND_TOKEN = "send-token-0123456789abcdef"  # noqa: S105 - a test token
OPERATE_TOKEN = "operate-token-0123456789abcdef"  # noqa: S105 - a test token

LEVELS = [
    {"level": 1, "daemons": [
        {"id": "echo", "class": "tierd.actors.builtin:Echo"},
        {"id": "gate", "class": "tests.daemons:Gate", "options": {"name": "http-gate"}},
        {"id": "crasher", "class": "tierd.actors.builtin:Crasher"},
    ], "queue_limit": 2},
]  # fmt: skip

KINDS = [
    {"kind": "held", "class": "tests.web.kinds:Held"},
    {"kind": "paced", "class": "tests.web.kinds:Paced"},
    {"kind": "broken", "class": "tests.web.kinds:Broken"},
    {"kind": "items", "class": "tests.web.kinds:Items"},
]


@dataclasses.dataclass
class Served:
    """A started runtime with its HTTP API, and clients for it."""

    runtime: tierd.Runtime
    url: str
    clients: list[httpx.Client]

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.Client(base_url=self.url, headers=headers, timeout=10)
        self.clients.append(client)
        return client


@pytest.fixture
def served(make_runtime: RuntimeFactory, tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start runtimes serving HTTP on a free loopback port (``tokens=True``: with both roles)."""
    made: list[Served] = []

    def make(
        *, tokens: bool = False, processes: bool = True,
        schedules: list[dict[str, Any]] | None = None, **runtime: Any,
    ) -> Served:  # fmt: skip
        section: dict[str, Any] = {"http": "127.0.0.1:0", "data_dir": str(tmp_path), **runtime}
        if tokens:
            section["http_tokens"] = [
                {"token": SEND_TOKEN, "role": "send"},
                {"token": OPERATE_TOKEN, "role": "operate"},
            ]
        config: dict[str, Any] = {"runtime": section, "levels": LEVELS}
        if processes:
            config["processes"] = {"kinds": KINDS}
        if schedules:
            config["schedules"] = schedules
        started = make_runtime(config)
        assert started.http is not None
        made.append(Served(started, f"http://{started.http.address}", []))
        return made[-1]

    yield make
    for gate in kinds.RELEASE.values():
        gate.set()
    kinds.RELEASE.clear()
    for one in made:
        for client in one.clients:
            client.close()
