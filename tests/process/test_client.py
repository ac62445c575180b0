"""`Client.processes` against a runtime over ZeroMQ: the same documents and errors as in-process."""

from __future__ import annotations

import pytest

import tierd
from tests.network import echo_level, endpoint, network_config
from tests.process import kinds
from tierd._control import OPERATIONS, ROLES
from tierd.testing import wait_until


@pytest.fixture
def served(make_runtime, make_client, tmp_path):
    address = endpoint()
    config = network_config(address, echo_level(1), data_dir=str(tmp_path / "data"))
    config["processes"] = {
        "kinds": [
            {"kind": "three", "class": "tests.process.kinds:Three"},
            {"kind": "checked", "class": "tests.process.kinds:Checked"},
            {"kind": "long", "class": "tests.process.kinds:Long"},
            {"kind": "nap", "class": "tests.process.kinds:Nap"},
            {"kind": "squares", "class": "tests.process.kinds:Squares"},
        ]
    }
    runtime = make_runtime(config)
    return runtime, make_client(address)


def test_submit_wait_get_history_result_over_the_wire(served):
    """The status document is the one Runtime.processes answers."""
    runtime, client = served
    pid = client.processes.submit("three", 1, priority="high", correlation={"user_id": "u"})
    final = client.processes.wait(pid, timeout=10)
    assert final["status"] == "completed"
    assert final["priority"] == 5
    assert client.processes.get(pid) == runtime.processes.get(pid)
    assert client.processes.result(pid) == "=4"
    assert client.processes.history(pid)[-1]["type"] == "process_completed"
    page = client.processes.list(kind="three")
    assert [p["process_id"] for p in page["items"]] == [pid]
    assert client.processes.stats()["counts"]["completed"] == 1
    napping = client.processes.submit("nap", {"seconds": 5}, key="k")
    assert client.processes.submit("nap", {"seconds": 1}, key="k") == napping
    client.processes.cancel(napping)


def test_errors_come_back_typed(served):
    """Unknown id: ProcessNotFound; bad input or a refused control: Rejected with the reason."""
    _, client = served
    with pytest.raises(tierd.ProcessNotFound, match="no process nope"):
        client.processes.get("nope")
    with pytest.raises(tierd.Rejected, match="unknown process kind 'nope'"):
        client.processes.submit("nope")
    with pytest.raises(tierd.Rejected, match=r"params.id: Input should be a valid integer"):
        client.processes.submit("checked", {"id": "x"})
    pid = client.processes.submit("three", 1)
    client.processes.wait(pid, timeout=10)
    with pytest.raises(tierd.Rejected, match=r"cannot pause process .* it is completed"):
        client.processes.pause(pid)


def test_pause_resume_cancel_retry_over_the_wire(served):
    """Pause and resume at the next progress; cancel at the next progress; retry."""
    _, client = served
    pid = client.processes.submit("nap", {"seconds": 1})
    client.processes.pause(pid)
    wait_until(lambda: client.processes.get(pid)["status"] == "paused")
    client.processes.resume(pid)
    client.processes.cancel(pid)
    assert client.processes.wait(pid, timeout=10)["status"] == "cancelled"
    with pytest.raises(tierd.ProcessFailed, match="ended cancelled"):
        client.processes.result(pid)
    client.processes.retry(pid)
    assert client.processes.wait(pid, timeout=10)["status"] == "completed"


def test_a_newer_process_api_version_is_refused_with_what_to_do(served):
    """The v argument is checked."""
    _, client = served
    with pytest.raises(tierd.Rejected, match="run the same tierd version"):
        client._control("process_get", {"v": 99, "id": "x"}, 5)


def test_a_batch_s_items_are_paged_over_the_wire(served):
    """Client.processes.items: the same pages as Runtime.processes.items; errors typed."""
    runtime, client = served
    kinds.HOOKS["fail"] = {2}
    pid = client.processes.submit("squares", {"count": 12})
    final = client.processes.wait(pid, timeout=10)
    assert (final["completed_items"], final["failed_items"], final["total_items"]) == (11, 1, 12)
    first = client.processes.items(pid, limit=5)
    assert first == runtime.processes.items(pid, limit=5)
    assert [i["index"] for i in first["items"]] == [0, 1, 2, 3, 4]
    second = client.processes.items(pid, limit=10, cursor=first["cursor"])
    assert [i["index"] for i in second["items"]] == [5, 6, 7, 8, 9, 10, 11]
    assert second["cursor"] is None
    failed = client.processes.items(pid, status="failed")["items"]
    assert [(i["index"], i["error"]["message"]) for i in failed] == [(2, "item 2 is bad")]
    with pytest.raises(tierd.Rejected, match="unknown item status"):
        client.processes.items(pid, status="nope")
    with pytest.raises(tierd.ProcessNotFound):
        client.processes.items("01ZZZZZZZZZZZZZZZZZZZZZZZZ")
    kinds.HOOKS.clear()


def test_every_operation_has_a_role_and_process_control_needs_operate():
    """For the roles issue: reading and submitting is send, controlling is operate."""
    assert set(OPERATIONS) == set(ROLES)
    assert {op for op in ROLES if op.startswith("process_") and ROLES[op] == "operate"} == {
        "process_cancel", "process_pause", "process_resume", "process_retry", "process_prune",
    }  # fmt: skip
    assert {op for op in ROLES if op.startswith("schedule_") and ROLES[op] == "operate"} == {
        "schedule_pause", "schedule_resume", "schedule_run_now",
    }  # fmt: skip
    assert ROLES["schedule_list"] == "send"
