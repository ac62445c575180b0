"""Fault: ``kill -9`` of a forwarding runtime while the peer serving a durable level is down.

Runtime A (front) serves level 1 and forwards level 2 to runtime B (back),
where level 2 is durable and its `IdLog` daemon logs every message it handles
with one ``write`` (which no kill undoes). A `tierd.Client` sends to
``log@2`` through A.

The fault and the load, in phases:

1. both up: 100 sends;
2. ``kill -9`` of B, then 300 sends (10 clients, 30 each) while B is down;
3. ``kill -9`` of A, still holding whatever it had for B; both restarted;
4. 100 sends.

Accepted means kept, across runtimes, exactly: every id a ``send`` returned
is handled; a send to a durable level of a down peer is never confirmed (A
has it in memory only, so it must not say "accepted": 0 of the 300); and
nothing is handled that was never sent. Before end-to-end acceptance, all
300 returned ids and none was ever handled.
"""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING

import pytest

import tierd
from tests.network import FAST_PEER, echo_level, endpoint, to_toml
from tests.topology import daemon, level
from tierd.testing import wait_until

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

BEFORE = 100
DURING = 300
SENDERS = 10
AFTER = 100


def write_configs(tmp_path: Path, front: str, back: str) -> tuple[Path, Path]:
    back_config = {
        "runtime": {
            "name": "back", "endpoint": back, "metrics": "", "log_level": "warning",
            "data_dir": str(tmp_path / "back-data"),
        },
        "levels": [
            level(2, daemon("log", "IdLog", options={"path": str(tmp_path / "handled.txt")}),
                  durable=True),
        ],
    }  # fmt: skip
    front_config = {
        "runtime": {"name": "front", "endpoint": front, "metrics": "", "log_level": "warning"},
        "levels": [echo_level(1)],
        "peers": [{"endpoint": back, "levels": [2], **FAST_PEER}],
    }
    paths = tmp_path / "back.toml", tmp_path / "front.toml"
    paths[0].write_text(to_toml(back_config))
    paths[1].write_text(to_toml(front_config))
    return paths


def handled(tmp_path: Path) -> list[str]:
    path = tmp_path / "handled.txt"
    if not path.exists():
        return []
    return [line.split()[0] for line in path.read_text().split("\n")[:-1]]


def start(tierd_cli, config: Path):
    process = tierd_cli("run", str(config))
    process.wait_for_line(r"running", timeout=30)
    return process


def kill9(process) -> None:
    process.process.kill()
    process.process.wait(10)


def send_until_accepted(address: str, timeout: float = 20.0) -> str:
    """The id of the first send through ``address`` that the whole path accepts."""

    def attempt() -> str | None:
        with tierd.Client(address, ack_timeout=0.5) as client:
            try:
                return client.send("log@2", "ready?")
            except (tierd.RequestTimeout, tierd.Rejected):
                return None

    return wait_until(attempt, timeout=timeout)


class Senders:
    """``SENDERS`` threads, each sending through its own client; what was confirmed or not."""

    def __init__(self, address: str, each: int) -> None:
        self.accepted: list[str] = []
        self.unconfirmed = 0
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._send, args=(address, each), daemon=True)
            for _ in range(SENDERS)
        ]

    def _send(self, address: str, each: int) -> None:
        with tierd.Client(address, ack_timeout=0.3) as client:
            for n in range(each):
                try:
                    message_id = client.send("log@2", n, timeout=2.0)
                except (tierd.RequestTimeout, tierd.Rejected):
                    with self._lock:
                        self.unconfirmed += 1
                else:
                    with self._lock:
                        self.accepted.append(message_id)

    def run(self) -> Senders:
        for thread in self._threads:
            thread.start()
        for thread in self._threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in self._threads)
        return self


@pytest.mark.timeout(180)
def test_kill9_of_a_forwarder_with_its_peer_down_loses_no_accepted_message(tmp_path, tierd_cli):
    """Every id a send returned is handled, after kill -9 of B, then of A, and both restarted."""
    front, back = endpoint(), endpoint()
    back_config, front_config = write_configs(tmp_path, front, back)
    b, a = start(tierd_cli, back_config), start(tierd_cli, front_config)
    accepted = [send_until_accepted(front)]
    with tierd.Client(front) as client:
        accepted += [client.send("log@2", n) for n in range(BEFORE)]

    kill9(b)
    during = Senders(front, DURING // SENDERS).run()
    kill9(a)

    b, a = start(tierd_cli, back_config), start(tierd_cli, front_config)
    accepted.append(send_until_accepted(front))
    with tierd.Client(front) as client:
        accepted += [client.send("log@2", n) for n in range(AFTER)]
    accepted += during.accepted
    try:
        wait_until(lambda: set(accepted) <= set(handled(tmp_path)), timeout=60)
    finally:
        a.finish()
        b.finish()
    lines = handled(tmp_path)
    counts = collections.Counter(lines)
    print(
        f"\nbefore: {BEFORE + 1} accepted; during B's outage: {len(during.accepted)} accepted, "
        f"{during.unconfirmed} unconfirmed of {DURING}; after: {AFTER + 1} accepted; "
        f"{len(set(accepted) - counts.keys())} accepted and lost; {len(counts)} handled"
    )
    assert set(accepted) <= counts.keys(), "an accepted message was lost"
    assert during.accepted == [], "a send was confirmed while only the forwarder held it"
    assert during.unconfirmed == DURING
    assert len(accepted) >= BEFORE + AFTER + 2
