"""``tierd process …`` end to end against a real ``tierd run`` subprocess."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from tests.network import echo_level, endpoint, network_config, to_toml
from tests.processes import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture
def running(tierd_cli, tmp_path):
    """A runtime running Three, Checked and Nap; yields its endpoint."""
    address = endpoint()
    config = network_config(address, echo_level(1), data_dir=str(tmp_path / "data"))
    config["processes"] = {
        "kinds": [
            {"kind": "three", "class": "tests.process.kinds:Three"},
            {"kind": "checked", "class": "tests.process.kinds:Checked"},
            {"kind": "nap", "class": "tests.process.kinds:Nap"},
            {"kind": "squares", "class": "tests.process.kinds:Squares"},
            {"kind": "echoes", "item_target": "echo@1", "batch": {"batch_size": 2}},
        ]
    }
    path = tmp_path / "processes.toml"
    path.write_text(to_toml(config))
    server = tierd_cli("run", str(path), "--log-level", "warning")
    server.wait_for_line("running")
    return address


def tierd(address, *args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "tierd.cli", "process", *args, "--endpoint", address],
        capture_output=True, text=True, cwd=ROOT, timeout=60, input=stdin, check=False,
    )  # fmt: skip


def test_submit_wait_show_list_history_stats_prune(running, tmp_path):
    """Each command's --json is the document; tables for people."""
    done = tierd(running, "submit", "three", "1", "--wait", "--json")
    assert done.returncode == 0, done.stderr
    final = json.loads(done.stdout)
    assert final["status"] == "completed"
    assert final["result"] == "=4"
    pid = final["process_id"]
    shown = json.loads(tierd(running, "show", pid, "--json").stdout)
    assert shown["process_id"] == pid
    table = tierd(running, "show", pid)
    assert "completed" in table.stdout
    assert "double" in table.stdout
    listed = json.loads(tierd(running, "list", "--kind", "three", "--since", "1h", "--json").stdout)
    assert [item["process_id"] for item in listed["items"]] == [pid]
    assert pid in tierd(running, "list", "--status", "completed").stdout
    history = json.loads(tierd(running, "history", pid, "--json").stdout)
    assert history[-1]["type"] == "process_completed"
    stats = json.loads(tierd(running, "stats", "--kind", "three", "--json").stdout)
    assert stats["counts"]["completed"] == 1
    assert "bottleneck" in tierd(running, "stats").stdout
    params = tmp_path / "params.json"
    params.write_text('{"id": 7}')
    from_file = tierd(running, "submit", "checked", f"@{params}", "--wait", "--json")
    assert json.loads(from_file.stdout)["result"] == 7
    from_stdin = tierd(running, "submit", "checked", "-", "--wait", "--json", stdin='{"id": 8}')
    assert json.loads(from_stdin.stdout)["result"] == 8
    pruned = tierd(running, "prune", "--older-than", "0s", "--json")
    assert json.loads(pruned.stdout) == {"deleted": 3}


def test_watch_draws_the_steps_until_the_process_finishes(running):
    """Live progress bars per step (rich); exit 0 once it completed."""
    pid = tierd(running, "submit", "nap", '{"seconds": 0.3}').stdout.strip()
    watched = tierd(running, "watch", pid)
    assert watched.returncode == 0, watched.stderr
    assert "first" in watched.stdout
    assert "second" in watched.stdout
    assert f"process {pid} completed" in watched.stdout


def test_a_batch_from_the_shell_shows_its_items_and_batches(running):
    """`submit --watch` draws the items and the batch; show and items list them; exit 0."""
    items = json.dumps({"items": [{"n": n} for n in range(5)]})
    watched = tierd(running, "submit", "echoes", items, "--watch")
    assert watched.returncode == 0, watched.stderr
    assert "5/5 done: 5 completed, 0 failed" in watched.stdout
    assert "batch" in watched.stdout
    pid = watched.stdout.split()[2]  # "watching process <id> (echoes)..."
    shown = tierd(running, "show", pid)
    assert "5/5 done: 5 completed, 0 failed" in shown.stdout
    assert "none running (3 run)" in shown.stdout
    page = json.loads(tierd(running, "items", pid, "--limit", "3", "--json").stdout)
    assert [i["index"] for i in page["items"]] == [0, 1, 2]
    rest = json.loads(tierd(running, "items", pid, "--cursor", page["cursor"], "--json").stdout)
    assert [i["result"] for i in rest["items"]] == [{"n": 3}, {"n": 4}]
    table = tierd(running, "items", pid, "--status", "completed")
    assert '{"n": 4}' in table.stdout
    assert "5 item(s)" in table.stdout
    wrong = tierd(running, "items", pid, "--status", "done")
    assert wrong.returncode == 2
    assert "unknown item status 'done'" in wrong.stderr


def test_pause_resume_cancel_retry_from_the_shell(running):
    """Controls print one line each; a retried process completes."""
    pid = tierd(running, "submit", "nap", '{"seconds": 2}').stdout.strip()
    assert tierd(running, "pause", pid).returncode == 0
    assert tierd(running, "cancel", pid).returncode == 0
    final = json.loads(tierd(running, "submit", "three", "1", "--wait", "--json").stdout)
    waited = tierd(running, "show", pid, "--json")
    assert json.loads(waited.stdout)["status"] in {"running", "paused", "cancelled"}
    assert final["status"] == "completed"
    assert tierd(running, "retry", final["process_id"], "--from-step", "text").returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "nope"], "ProcessNotFound: no process nope"),
        (["submit", "nope"], "Rejected: unknown process kind 'nope'"),
        (["submit", "checked", '{"id": "x"}'], "params.id: Input should be a valid integer"),
        (["submit", "three", "{bad"], "the payload is not JSON"),
        (["submit", "three", "@/no/such/file"], "cannot read the payload file /no/such/file"),
        (["list", "--since", "soon"], "--since/--until: not a duration"),
        (["prune", "--older-than", "x"], "--older-than: not a duration"),
        (["list", "--status", "nope"], "unknown status 'nope'"),
    ],
)
def test_every_user_mistake_is_one_line_and_exit_2(running, args, message):
    """No traceback; the line names what is wrong."""
    done = tierd(running, *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_no_runtime_is_one_line_and_exit_1():
    """A timeout says nothing answered."""
    done = subprocess.run(
        [sys.executable, "-m", "tierd.cli", "process", "show", "x", "--endpoint", endpoint(),
         "--timeout", "0.3"],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "RequestTimeout" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_ctrl_c_during_watch_exits_130_without_a_traceback(running):
    """SIGINT while watching a long process."""
    pid = tierd(running, "submit", "nap", '{"seconds": 30}').stdout.strip()
    watcher = subprocess.Popen(
        [sys.executable, "-m", "tierd.cli", "process", "watch", pid, "--endpoint", running],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert watcher.stdout is not None
        watcher.stdout.readline()  # it has drawn something: it is watching
        watcher.send_signal(signal.SIGINT)
        _, err = watcher.communicate(timeout=20)
    finally:
        if watcher.poll() is None:
            watcher.kill()
    assert watcher.returncode == 130
    assert "Traceback" not in err
