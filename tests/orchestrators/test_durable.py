"""Durable levels in one process: journal on accept, recovery on start, dedup, errors."""

from __future__ import annotations

import sqlite3
import time

import pytest

import tierd
from tests.network import endpoint
from tests.topology import daemon, level
from tierd.messaging.message import Address, Message
from tierd.orchestrators._journal import Journal
from tierd.testing import runtime_from_dict, wait_until


def durable_config(data_dir, **level_extra):
    return {
        "runtime": {"name": "dur", "data_dir": str(data_dir)},
        "levels": [
            level(1, daemon("recorder", "Recorder"), durable=True, **level_extra),
            level(2, daemon("echo", "Echo")),
        ],
    }


def journal_rows(data_dir, table="messages"):
    with sqlite3.connect(data_dir / "dur-level1.sqlite3") as db:
        return db.execute(f"SELECT id FROM {table}").fetchall()  # noqa: S608 - test tables


def test_send_returns_once_the_message_is_in_the_journal(tmp_path, make_runtime):
    """Runtime.send to a durable level returns only after the journal committed the message."""
    rt = make_runtime(durable_config(tmp_path))
    rt.pause("recorder@1")
    message_id = rt.send("recorder@1", {"n": 1})
    assert journal_rows(tmp_path) == [(message_id,)]


def test_handled_messages_leave_the_journal_and_are_remembered(tmp_path, make_runtime):
    """A handled message is deleted from the journal and its id kept for deduplication."""
    rt = make_runtime(durable_config(tmp_path))
    ids = {rt.send("recorder@1", n) for n in range(20)}
    assert rt.request("recorder@1", {"op": "count"}, timeout=5) == 20
    wait_until(lambda: len(journal_rows(tmp_path, "handled")) >= 21)
    assert journal_rows(tmp_path) == []
    assert ids <= {row[0] for row in journal_rows(tmp_path, "handled")}


def test_queued_messages_survive_a_restart_in_priority_order(tmp_path, gates):
    """Notifications queued when a durable level stops are delivered next start, by priority."""
    first = runtime_from_dict(durable_config(tmp_path))
    first.start()
    first.pause("recorder@1")
    for n, priority in [(1, "low"), (2, "high"), (3, "normal"), (4, "high")]:
        first.send("recorder@1", n, priority=priority)
    first.stop(grace_period=0)
    assert len(journal_rows(tmp_path)) == 4

    with runtime_from_dict(durable_config(tmp_path)) as second:
        wait_until(lambda: second.request("recorder@1", {"op": "count"}, timeout=5) == 4)
        assert second.request("recorder@1", {"op": "dump"}, timeout=5) == [2, 4, 3, 1]


def test_a_message_that_expired_while_down_is_dead_lettered_and_kept(tmp_path, gates):
    """A recovered message past its timeout is dead-lettered as expired; that survives a restart."""
    first = runtime_from_dict(durable_config(tmp_path))
    first.start()
    first.pause("recorder@1")
    gone = first.send("recorder@1", "short", timeout=0.05)
    kept = first.send("recorder@1", "long", timeout=60)
    first.stop(grace_period=0)
    time.sleep(0.1)  # nothing to wait on: the message's own timeout must pass while no runtime runs

    with runtime_from_dict(durable_config(tmp_path)) as second:
        letters = second.dead_letters(1)
        assert [(d.message.id, d.reason) for d in letters] == [(gone, "expired")]
        assert second.request("recorder@1", {"op": "dump"}, timeout=5) == ["long"]
        assert kept not in {d.message.id for d in letters}
    with runtime_from_dict(durable_config(tmp_path)) as third:
        assert [(d.message.id, d.reason) for d in third.dead_letters(1)] == [(gone, "expired")]


def test_recovery_skips_ids_handled_within_the_window(tmp_path):
    """A journaled message whose id was already handled within the dedup window is not requeued."""
    journal = Journal(tmp_path / "j.sqlite3", dedup_window=600, dead_letter_limit=10, level=1)
    journal.start()
    message = Message.notification(Address("runtime", 0), Address("recorder", 1), "x")
    journal.put(journal.record(message, None), 0).wait(5)
    journal.done(message.id)
    journal.put(journal.record(message, None), 0).wait(5)  # the same id accepted again: a resend
    other = Message.notification(Address("runtime", 0), Address("recorder", 1), "y")
    journal.attempt(other.id, 0)
    journal.put(journal.record(other, None), 0).wait(5)
    journal.attempt(other.id, 3)
    journal.close()

    reopened = Journal(tmp_path / "j.sqlite3", dedup_window=600, dead_letter_limit=10, level=1)
    try:
        recovered = reopened.recover()
    finally:
        reopened.close()
    assert [(m.id, m.attempts) for m, _ in recovered.messages] == [(other.id, 3)]
    assert [message_id for message_id, _ in recovered.handled] == [message.id]


def test_an_unjournalable_payload_is_refused(tmp_path, make_runtime):
    """A durable level refuses a payload it cannot write (not msgpack-able) with Rejected."""
    rt = make_runtime(durable_config(tmp_path))
    with pytest.raises(tierd.Rejected, match="msgpack"):
        rt.request("recorder@1", {"op": object()}, timeout=5)


def test_a_data_dir_that_is_a_file_is_a_config_error(tmp_path):
    """A data_dir that cannot hold a journal stops the start; the error names runtime.data_dir."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    runtime = runtime_from_dict(durable_config(blocker))
    with pytest.raises(tierd.ConfigError, match=r"runtime\.data_dir: .*level 1"):
        runtime.start()


def test_two_runtimes_cannot_share_a_journal(tmp_path, make_runtime):
    """A second runtime with the same name and data_dir is refused: it may not share the journal."""
    make_runtime(durable_config(tmp_path))
    with pytest.raises(tierd.ConfigError, match="another running tierd uses this journal"):
        make_runtime(durable_config(tmp_path))


def test_a_level_that_is_not_durable_writes_nothing(tmp_path, make_runtime):
    """Without durable = true a level keeps no journal and data_dir is never created."""
    config = durable_config(tmp_path / "data")
    config["levels"][0]["durable"] = False
    rt = make_runtime(config)
    rt.send("recorder@1", 1)
    assert rt.journals == {}
    assert not (tmp_path / "data").exists()


def test_client_send_returns_once_the_message_is_in_the_journal(
    tmp_path, make_runtime, make_client
):
    """The bridge acks a message for a durable level only after its journal commit."""
    config = durable_config(tmp_path)
    address = endpoint()
    config["runtime"]["endpoint"] = address
    rt = make_runtime(config)
    rt.pause("recorder@1")
    client = make_client(address)
    ids = [client.send("recorder@1", n) for n in range(50)]
    assert sorted(row[0] for row in journal_rows(tmp_path)) == sorted(ids)
    assert client.request("echo@2", "still answers", timeout=5) == "still answers"
