"""Processes in a running `tierd.Runtime`: real threads, steps that call daemons, the config."""

from __future__ import annotations

import threading

import pytest

import tierd
from tests import daemons
from tests.process import kinds
from tests.topology import daemon, level
from tierd.config import parse_config
from tierd.testing import wait_until


def config(tmp_path, *process_kinds, **section):
    return {
        "runtime": {"data_dir": str(tmp_path / "data")},
        "levels": [
            level(
                1,
                daemon("echo", "Echo"),
                daemon("recorder", "Recorder"),
                daemon("crasher", "Crasher"),
            ),
        ],
        "processes": {"kinds": list(process_kinds), **section},
    }


def test_a_python_kind_runs_in_the_runtime_and_its_steps_call_daemons(make_runtime, tmp_path):
    """ctx.request goes to echo@1, ctx.notify to recorder@1; wait returns the final status."""
    rt = make_runtime(config(tmp_path, {"kind": "greet", "class": "tests.process.kinds:Greet"}))
    pid = rt.processes.submit("greet", "ann")
    final = rt.processes.wait(pid, timeout=10)
    assert final["status"] == "completed"
    assert final["result"] == {"hello": "ann"}
    assert rt.processes.result(pid) == {"hello": "ann"}
    assert rt.request("recorder@1", {"op": "dump"}, timeout=5) == [{"hello": "ann"}]
    assert rt.processes.get(pid)["steps"]["ask"]["cpu"] is not None


def test_a_kind_of_request_steps_from_the_config(make_runtime, tmp_path):
    """Steps = [{name, target, timeout}]: each step's reply is the next one's payload."""
    steps = [{"name": "first", "target": "echo@1", "timeout": 5},
             {"name": "second", "target": "echo@1", "timeout": 5}]  # fmt: skip
    rt = make_runtime(config(tmp_path, {"kind": "echoes", "steps": steps}))
    pid = rt.processes.submit("echoes", {"x": 1})
    assert rt.processes.wait(pid, timeout=10)["result"] == {"x": 1}


def test_a_daemon_error_in_a_request_step_is_retried_by_its_type_name(make_runtime, tmp_path):
    """The Crasher raises RuntimeError; retry on RuntimeError retries it, then it fails."""
    retry = {"max_attempts": 2, "initial_delay": 0.0, "on": ["RuntimeError"]}
    steps = [{"name": "crash", "target": "crasher@1", "timeout": 5, "retry": retry}]
    rt = make_runtime(config(tmp_path, {"kind": "crashy", "steps": steps}))
    pid = rt.processes.submit("crashy")
    final = rt.processes.wait(pid, timeout=10)
    assert final["status"] == "failed"
    assert final["steps"]["crash"]["attempts"] == 2
    assert final["error"]["error_type"] == "RemoteError"


def test_processes_survive_a_stop_and_run_on_after_a_start(make_runtime, tmp_path):
    """A step in hand at stop is interrupted, not failed, and runs again after the restart."""
    cfg = config(tmp_path, {"kind": "long", "class": "tests.process.kinds:Long"})
    gate = daemons.GATES.setdefault("long", threading.Event())
    kinds.HOOKS["long"] = lambda ctx, i: gate.wait(10) if i == 0 and ctx.attempt == 1 else None
    rt = make_runtime(cfg)
    pid = rt.processes.submit("long")
    wait_until(lambda: kinds.CALLS)
    rt.stop(grace_period=0)
    gate.set()
    again = make_runtime(cfg)
    final = again.processes.wait(pid, timeout=10)
    assert final["status"] == "completed"
    assert final["steps"]["work"]["attempts"] == 2
    kinds.HOOKS.clear()
    kinds.CALLS.clear()


def test_a_runtime_without_a_processes_table_says_how_to_add_one(make_runtime):
    """Runtime.processes raises ConfigError with the fix."""
    rt = make_runtime({"levels": [level(1, daemon("echo", "Echo"))]})
    with pytest.raises(tierd.ConfigError, match=r"add a \[processes\] table"):
        rt.processes.submit("x")


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ({"kind": "x"}, "processes.kinds[0]: give one of class"),
        ({"kind": "x", "class": "tests.daemons:Gate"}, "no Process subclass Gate"),
        ({"kind": "x", "class": "nope.mod:X"}, "processes.kinds[0].class: unknown class"),
        ({"kind": "x", "steps": [{"name": "a", "target": "echo"}]},
         "processes.kinds[0].steps[0].target"),
        ({"kind": "x", "steps": [{"name": "a", "target": "echo@1", "timeout": "5"}]},
         "processes.kinds[0].steps[0].timeout: Input should be a valid number"),
        ({"kind": "x", "steps": [{"name": "a", "target": "echo@1", "colour": 1}]},
         "processes.kinds[0].steps[0].colour: unknown key"),
    ],
)  # fmt: skip
def test_a_bad_kind_in_the_config_is_refused_naming_the_key(tmp_path, kind, message):
    """Strict checks, one line per problem with its key."""
    with pytest.raises(tierd.ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_config(config(tmp_path, kind))


def test_processes_settings_are_checked(tmp_path):
    """stuck_after and retention take durations; a bad one names its key."""
    good = parse_config(config(tmp_path, stuck_after="10m", retention={"completed": "2d"}))
    assert good.processes is not None
    assert good.processes.stuck_after == 600.0
    assert good.processes.retention.completed == 2 * 86400.0
    with pytest.raises(tierd.ConfigError, match=r"processes.retention.failed: not a duration"):
        parse_config(config(tmp_path, retention={"failed": "soon"}))
    with pytest.raises(tierd.ConfigError, match=r"processes.store: unsupported store"):
        parse_config(config(tmp_path, store="mysql://x"))
    assert parse_config(config(tmp_path, store="postgresql://u@h/db")).processes is not None
    with pytest.raises(tierd.ConfigError, match="declared twice"):
        parse_config(config(tmp_path, {"kind": "a", "class": "tests.process.kinds:Three"},
                            {"kind": "a", "class": "tests.process.kinds:Three"}))  # fmt: skip


def test_the_import_pipeline_example_runs_an_import_to_its_receipt(tmp_path, gates):
    """configs/import-pipeline.toml: six request steps, the receipt as the result."""
    from tests.processes import CONFIGS
    from tierd.config import load_config, override_runtime

    loaded = load_config(CONFIGS / "import-pipeline.toml")
    cfg = override_runtime(
        loaded, "test", endpoint="", metrics="", events="", data_dir=str(tmp_path)
    )
    records = [{"id": 1, "email": " Ann@Example.org ", "amount": "12.5"},
               {"id": 1, "email": "ann@example.org", "amount": "13"}]  # fmt: skip
    with tierd.Runtime(cfg) as rt:
        pid = rt.processes.submit("import", {"source": "crm", "records": records})
        final = rt.processes.wait(pid, timeout=20)
        assert final["status"] == "completed", final["error"]
        assert final["result"] == {"source": "crm", "saved": 1, "duplicates": 1}
        assert final["steps_completed"] == [
            "validation", "collection", "conversion", "integration", "saving", "cleanup",
        ]  # fmt: skip
        category = [{"id": 7, "email": " Bo@Example.org "}, {"name": "no id"}, {"id": 8}]
        pid = rt.processes.submit("import_category", {"items": category})
        final = rt.processes.wait(pid, timeout=20)
        assert final["status"] == "completed", final["error"]
        assert (final["completed_items"], final["failed_items"]) == (2, 1)
        failed = rt.processes.items(pid, status="failed")["items"]
        assert failed[0]["index"] == 1
        assert failed[0]["attempts"] == 3  # retry_failed_batches = 2
        assert "a record is a table with an 'id'" in failed[0]["error"]["message"]
        saved = rt.request("store@2", {"op": "dump"}, timeout=5)
        assert {"id": 7, "email": "bo@example.org"} in saved


def test_a_batch_never_runs_more_items_at_once_than_max_concurrent(make_runtime, tmp_path):
    """Real threads, a recorder of overlaps under a lock: the most at once is exactly 3."""
    rt = make_runtime(config(tmp_path, {"kind": "overlap", "class": "tests.process.kinds:Overlap"}))
    pid = rt.processes.submit("overlap", {"count": 30})
    final = rt.processes.wait(pid, timeout=20)
    assert final["status"] == "completed"
    assert final["completed_items"] == 30
    assert kinds.OVERLAP.most == 3


def test_a_hung_item_fails_at_its_item_timeout_and_the_batch_still_ends(make_runtime, tmp_path):
    """Item 1 never returns: it fails with ItemTimeout, the other two complete."""
    rt = make_runtime(config(tmp_path, {"kind": "hangs", "class": "tests.process.kinds:Hangs"}))
    try:
        pid = rt.processes.submit("hangs")
        final = rt.processes.wait(pid, timeout=20)
    finally:
        kinds.HANG.set()
    assert final["status"] == "completed"
    assert (final["completed_items"], final["failed_items"], final["total_items"]) == (2, 1, 3)
    failed = rt.processes.items(pid, status="failed")["items"]
    assert [(i["index"], i["error"]["error_type"]) for i in failed] == [(1, "ItemTimeout")]


def test_a_config_batch_sends_each_item_to_its_item_target(make_runtime, tmp_path):
    """item_target = echo@1: params["items"] are the requests, their replies the results."""
    batch = {"batch_size": 2, "max_concurrent": 2, "item_timeout": 5}
    echoes = {"kind": "echoes", "item_target": "echo@1", "batch": batch}
    crashes = {"kind": "crashes", "item_target": "crasher@1", "batch": {"fail_policy": "fail_fast"}}
    rt = make_runtime(config(tmp_path, echoes, crashes))
    pid = rt.processes.submit("echoes", {"items": [{"n": n} for n in range(5)]})
    final = rt.processes.wait(pid, timeout=10)
    assert final["status"] == "completed"
    assert (final["completed_items"], final["batches"]) == (5, 3)
    assert [i["result"] for i in rt.processes.items(pid)["items"]] == [{"n": n} for n in range(5)]
    refused = rt.processes.wait(rt.processes.submit("crashes", {"items": [1, 2, 3]}), timeout=10)
    assert refused["status"] == "failed"
    assert refused["failed_items"] == 1
    assert refused["skipped_items"] == 2
    assert refused["error"]["details"]["failed"][0]["error"]["error_type"] == "RemoteError"
    with pytest.raises(ValueError, match=r"takes its items in the params: \{\"items\""):
        rt.processes.submit("echoes", {"nothing": 1})
