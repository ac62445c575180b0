"""Fault 1: ``kill -9`` of ``tierd run`` under load, then a restart on the same data_dir.

The load: notifications from one `tierd.Client` to a level whose daemon
(`IdLog`) is slower than the sender, so a queue builds; the runtime is killed
half-way. "Handled" is a line in a file the daemon appends to with one
``write`` per message, which the kill cannot undo. "Accepted" is an id that
``Client.send`` returned.

Nothing lost, exactly: every accepted id is handled; nothing is handled that
was never sent; no id is handled twice by one run; an id handled by both runs
is one of the last the killed run handled: the one in hand at the kill, and
those whose completion was not committed yet (completions are committed in
handling order, so these are the run's last), and the second run saw it as a
redelivery (``attempts`` > 1) unless the kill also lost that record.

``TIERD_KILL9_MESSAGES`` sets the load (default 10,000).
"""

from __future__ import annotations

import collections
import os
import sqlite3
import threading
from typing import TYPE_CHECKING

import pytest

import tierd
from tests.network import echo_level, endpoint, to_toml
from tests.topology import daemon, level
from tierd.testing import wait_until

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

MESSAGES = int(os.environ.get("TIERD_KILL9_MESSAGES", "10000"))
DELAY = 0.001
"""Seconds the daemon spends per message: slower than the sender, so a queue builds."""


def write_config(tmp_path: Path, address: str, *, durable: bool, delay: float = DELAY) -> Path:
    config = {
        "runtime": {
            "name": "kill9",
            "endpoint": address,
            "metrics": "",
            "sweep_interval": 0.05,
            "data_dir": str(tmp_path / "data"),
            "log_level": "warning",
        },
        "levels": [
            level(
                1,
                daemon(
                    "log", "IdLog", options={"path": str(tmp_path / "handled.txt"), "delay": delay}
                ),
                durable=durable,
            ),
            echo_level(2),
        ],
    }
    path = tmp_path / "kill9.toml"
    path.write_text(to_toml(config))
    return path


def handled_lines(tmp_path: Path) -> list[tuple[str, int, int]]:
    """Every ``(id, attempts, pid)`` the daemon logged, in order."""
    path = tmp_path / "handled.txt"
    if not path.exists():
        return []
    lines = path.read_text().split("\n")[:-1]  # a line still being written is not one yet
    return [(i, int(a), int(p)) for i, a, p in (line.split() for line in lines)]


class Sender(threading.Thread):
    """Sends ``total`` notifications, one at a time, through its own `tierd.Client`."""

    def __init__(self, address: str, total: int) -> None:
        super().__init__(daemon=True)
        self.address = address
        self.total = total
        self.accepted: list[str] = []
        """Ids whose send returned: the runtime accepted them."""
        self.unconfirmed: list[str] = []
        """Ids whose send raised: not accepted (they may or may not be handled)."""
        self.progress = threading.Semaphore(0)

    def run(self) -> None:
        with tierd.Client(self.address, ack_timeout=1.0) as client:
            for n in range(self.total):
                try:
                    self.accepted.append(client.send("log@1", n, timeout=300))
                except tierd.RequestTimeout as lost:
                    self.unconfirmed.append(lost.message_id)
                self.progress.release()


def start_runtime(tierd_cli, config: Path):
    process = tierd_cli("run", str(config))
    process.wait_for_line(r"running", timeout=30)
    return process


def kill9(process) -> None:
    process.process.kill()  # SIGKILL: no clean-up at all
    process.process.wait(10)


@pytest.mark.timeout(300)
def test_kill9_of_a_durable_level_loses_no_accepted_message(tmp_path, tierd_cli):
    """After kill -9 and a restart, every accepted message of a durable level is handled."""
    address = endpoint()
    config = write_config(tmp_path, address, durable=True)
    first = start_runtime(tierd_cli, config)
    sender = Sender(address, MESSAGES)
    sender.start()
    for _ in range(MESSAGES // 2):
        assert sender.progress.acquire(timeout=30)
    queued_at_kill = len(sender.accepted) - len(handled_lines(tmp_path))
    kill9(first)
    killed_pid = first.process.pid

    second = start_runtime(tierd_cli, config)
    sender.join(240)
    assert not sender.is_alive()
    accepted = set(sender.accepted)
    wait_until(lambda: accepted <= {i for i, _, _ in handled_lines(tmp_path)}, timeout=120)
    second.finish()

    lines = handled_lines(tmp_path)
    handled = collections.Counter(i for i, _, _ in lines)
    assert accepted <= handled.keys(), "an accepted message was lost"
    assert handled.keys() <= accepted | set(sender.unconfirmed), "handled a message never sent"
    assert queued_at_kill > 100, "the kill must find a queue to recover"
    by_run = collections.Counter((i, pid) for i, _, pid in lines)
    assert max(by_run.values()) == 1, "a run handled an id twice"
    twice = {i for i, n in handled.items() if n > 1}
    # Completions reach the journal in handling order, so the ones the kill
    # caught uncommitted (and the message in hand) are the killed run's last.
    killed_run = [i for i, _, pid in lines if pid == killed_pid]
    last = set(killed_run[len(killed_run) - len(twice) :])
    assert twice == last, f"only the killed run's last messages may be handled again: {twice}"
    for message_id in twice:
        runs = [(attempts, pid) for i, attempts, pid in lines if i == message_id]
        assert runs[0][1] == killed_pid
        assert runs[1][1] != killed_pid
    print(
        f"\n{MESSAGES} sent, {len(accepted)} accepted, {len(sender.unconfirmed)} unconfirmed, "
        f"{queued_at_kill} queued at the kill, {len(handled)} handled, {len(twice)} twice"
    )


@pytest.mark.timeout(120)
def test_kill9_of_a_level_that_is_not_durable_loses_its_queue(tmp_path, tierd_cli):
    """Documented, not hidden: kill -9 loses the queue of a level without durable = true."""
    address = endpoint()
    config = write_config(tmp_path, address, durable=False, delay=0.01)
    first = start_runtime(tierd_cli, config)
    sender = Sender(address, 2000)
    sender.run()  # in this thread: the level queues far faster than the daemon handles
    kill9(first)
    second = start_runtime(tierd_cli, config)
    with tierd.Client(address) as client:  # the restarted runtime answers, and has nothing
        status = client.status()
    second.finish()
    handled = {i for i, _, _ in handled_lines(tmp_path)}
    lost = set(sender.accepted) - handled
    print(f"\n{len(sender.accepted)} accepted, {len(handled)} handled, {len(lost)} lost")
    assert len(sender.accepted) == 2000
    assert len(lost) > 1000, "most accepted messages were still queued, and are gone"
    assert status["levels"][0]["queued"] == 0
    assert status["levels"][0]["received"] == 0
    assert not (tmp_path / "data").exists(), "a level that is not durable writes no journal"


@pytest.mark.timeout(120)
def test_a_request_accepted_before_kill9_is_answered_after_the_restart(tmp_path, tierd_cli):
    """A client still waiting on a durable level's request gets its reply after the restart."""
    address = endpoint()
    config = write_config(tmp_path, address, durable=True)
    first = start_runtime(tierd_cli, config)
    outcome: dict[str, object] = {}

    def ask() -> None:
        with tierd.Client(address) as client:
            try:
                outcome["reply"] = client.request("log@1", {"sleep": 1.0}, timeout=60)
            except tierd.TierdError as error:
                outcome["error"] = error

    asker = threading.Thread(target=ask, daemon=True)
    asker.start()
    started = wait_until(
        lambda: [line for line in handled_lines_raw(tmp_path) if line.startswith("request")]
    )
    request_id = started[0].split()[1]
    journal = tmp_path / "data" / "kill9-level1.sqlite3"
    wait_until(lambda: journal_holds(journal, request_id))
    kill9(first)

    second = start_runtime(tierd_cli, config)
    asker.join(60)
    second.finish()
    assert outcome.get("reply") == {"pid": second.process.pid, "attempts": 2}, outcome


def handled_lines_raw(tmp_path: Path) -> list[str]:
    path = tmp_path / "handled.txt"
    return path.read_text().split("\n")[:-1] if path.exists() else []


def journal_holds(path: Path, message_id: str) -> bool:
    """Whether the (running) runtime's journal has committed ``message_id``."""
    if not path.exists():
        return False
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return (
            db.execute("SELECT 1 FROM messages WHERE id = ?", (message_id,)).fetchone() is not None
        )


class BatchSender(threading.Thread):
    """Sends ``total`` notifications with `Client.send_many`, in calls of ``chunk`` items."""

    def __init__(self, address: str, total: int, chunk: int = 500) -> None:
        super().__init__(daemon=True)
        self.address = address
        self.total = total
        self.chunk = chunk
        self.confirmed: list[str] = []
        """Ids the runtime confirmed: returned by send_many, or not in its refusal."""
        self.refused: list[str] = []
        """Ids reported refused or unconfirmed (they may or may not be handled)."""
        self.calls = threading.Semaphore(0)

    def run(self) -> None:
        with tierd.Client(self.address, ack_timeout=1.0) as client:
            for start in range(0, self.total, self.chunk):
                items = [("log@1", n) for n in range(start, start + self.chunk)]
                try:
                    self.confirmed.extend(client.send_many(items, timeout=300, window=200))
                except tierd.BatchRejected as partly:
                    refused = {item.index for item in partly.refused}
                    for index, message_id in enumerate(partly.ids):
                        (self.refused if index in refused else self.confirmed).append(message_id)
                self.calls.release()


@pytest.mark.timeout(300)
def test_kill9_during_send_many_to_a_durable_level_loses_no_confirmed_message(tmp_path, tierd_cli):
    """Every id send_many confirmed (after the group commit) is handled after kill -9."""
    address = endpoint()
    config = write_config(tmp_path, address, durable=True)
    first = start_runtime(tierd_cli, config)
    sender = BatchSender(address, MESSAGES)
    sender.start()
    for _ in range(MESSAGES // sender.chunk // 2):
        assert sender.calls.acquire(timeout=60)
    kill9(first)

    second = start_runtime(tierd_cli, config)
    sender.join(240)
    assert not sender.is_alive()
    confirmed = set(sender.confirmed)
    assert len(confirmed) >= MESSAGES // 2
    wait_until(lambda: confirmed <= {i for i, _, _ in handled_lines(tmp_path)}, timeout=120)
    second.finish()
    handled = {i for i, _, _ in handled_lines(tmp_path)}
    assert confirmed <= handled, "a confirmed message was lost"
    assert handled <= confirmed | set(sender.refused), "handled a message never sent"
    print(
        f"\n{MESSAGES} sent, {len(confirmed)} confirmed, {len(sender.refused)} refused or "
        f"unconfirmed, {len(handled)} handled"
    )
