"""A level behaves the same over either store; the durable one keeps what the memory one drops."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.orchestrators.manual import ManualLevel, spec
from tierd.messaging.message import Address, Message
from tierd.orchestrators._journal import Journal
from tierd.orchestrators._store import MemoryStore

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(params=["memory", "journal"])
def store(request, tmp_path: Path):
    if request.param == "memory":
        yield MemoryStore()
        return
    journal = Journal(tmp_path / "level.sqlite3", dedup_window=60, dead_letter_limit=100, level=1)
    journal.recover()
    journal.start()
    yield journal
    journal.close()


def test_messages_are_handled_in_order_over_either_store(store):
    """Accept, hand over, finish: the same hand-overs and counts whatever keeps the messages."""
    manual = ManualLevel([spec()], store=store)
    accepted = [
        manual.level.submit(Message.notification(Address("c", 0), Address("worker", 1), n), None)
        for n in range(3)
    ]
    for outcome in accepted:
        if outcome is not None:
            assert outcome.wait(5) is None  # the journal committed
    assert [m.payload for m in manual.handle_next("worker")] == [0, 1, 2]
    assert manual.level.statistics().processed == 3


def test_a_stop_keeps_queued_notifications_only_in_a_durable_store(store):
    """A stop dead-letters a memory level's queue; a journal keeps it for the next start."""
    manual = ManualLevel([spec()], store=store)
    manual.level.set_paused("worker", paused=True)
    manual.level.submit(Message.notification(Address("c", 0), Address("worker", 1), 1), None)
    manual.level.fail_everything("stopping")
    dead = manual.level.statistics().dead_letters
    assert dead == ({} if store.durable else {"stopped": 1})
