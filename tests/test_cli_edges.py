"""The `tierd` client commands at their edges, run as a user runs them: the installed executable.

A user mistake is one line and exit 2; an error from the runtime one line and
exit 1; Ctrl-C one line and exit 130; never a traceback.
"""

from __future__ import annotations

import json
import signal
import subprocess
from typing import Any

import pytest

import tierd
from tests import daemons
from tests.network import endpoint, network_config
from tests.processes import ROOT, TIERD, run_tierd
from tests.topology import daemon, level
from tierd.testing import wait_until


class Priority(tierd.Daemon):
    """Replies with the priority its request arrived with."""

    def handle(self, message: tierd.Message) -> Any:
        return message.priority


@pytest.fixture
def served(make_runtime):
    """A loopback runtime: echo, a gate, a crasher, a priority echo (queue_limit 1); its address."""
    address = endpoint()
    rt = make_runtime(
        network_config(
            address,
            level(
                1, daemon("echo", "Echo"), daemon("gate", "Gate", options={"name": "edges"}),
                daemon("crasher", "Crasher"),
                daemon("priority", "tests.test_cli_edges:Priority"),
                queue_limit=1,
            ),
        )
    )  # fmt: skip
    return rt, address


def one_line(done: subprocess.CompletedProcess[str], code: int) -> str:
    """The one line ``done`` wrote to stderr, after checking its exit code."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def received(rt: tierd.Runtime) -> int:
    """Messages the runtime's levels accepted so far."""
    return sum(sum(level.received.values()) for level in rt.statistics())


def test_version_prints_the_version():
    """`tierd --version` prints tierd's version and exits 0."""
    done = run_tierd("--version")
    assert (done.returncode, done.stdout) == (0, f"tierd {tierd.__version__}\n")


def test_a_usage_mistake_is_one_line_with_exit_2():
    """An unknown command or a missing argument is one line (not a usage block), exit 2."""
    assert one_line(run_tierd("bogus"), 2).startswith("tierd: argument COMMAND: invalid choice")
    assert one_line(run_tierd("request"), 2).startswith(
        "tierd request: the following arguments are required: target"
    )


@pytest.mark.parametrize("command", ["status", "request", "send", "cancel", "dead-letters"])
def test_a_bare_host_port_endpoint_means_tcp(served, command):
    """`--endpoint 127.0.0.1:PORT` on every client command is `tcp://127.0.0.1:PORT`."""
    _, address = served
    bare = address.removeprefix("tcp://")
    args = {
        "status": ["status"],
        "request": ["request", "echo@1", '"hi"'],
        "send": ["send", "echo@1", '"hi"'],
        "cancel": ["cancel", "unknown-id"],
        "dead-letters": ["dead-letters", "list"],
    }[command]
    done = run_tierd(*args, "--endpoint", bare)
    assert done.returncode == (1 if command == "cancel" else 0), done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_endpoint_is_one_line_with_exit_2():
    """An endpoint that is neither host:port nor a ZeroMQ endpoint is refused up front."""
    line = one_line(run_tierd("status", "--endpoint", "nonsense"), 2)
    assert line == (
        "tierd status: argument --endpoint: bad endpoint 'nonsense': expected host:port or "
        "tcp://host:port, e.g. 127.0.0.1:5555 (see 'tierd status --help')"
    )


@pytest.mark.parametrize(
    ("command", "timeout"),
    [("request", t) for t in ("-1", "0", "inf", "nan", "1e7", "soon")]
    + [("send", "inf"), ("status", "-1")],
)
def test_a_bad_timeout_is_refused_before_anything_is_sent(served, command, timeout):
    """`--timeout` that is not positive, finite and at most 7 days: one line, exit 2, no send."""
    rt, address = served
    args = {"request": ["request", "echo@1"], "send": ["send", "echo@1"], "status": ["status"]}
    before = received(rt)
    line = one_line(run_tierd(*args[command], "--timeout", timeout, "--endpoint", address), 2)
    assert line.startswith(f"tierd {command}: argument --timeout: {timeout!r} is not a number")
    assert received(rt) == before


@pytest.mark.parametrize(
    "args",
    [
        ["request", "gate@1", '"wait"', "--timeout", "30"],
        ["send", "gate@1", '"x"', "--wait", "--timeout", "30"],
    ],
    ids=["request", "send"],
)
def test_ctrl_c_while_waiting_on_a_runtime_is_one_line_and_exit_130(served, args):
    """Ctrl-C on a command waiting for the runtime prints `interrupted` and exits 130."""
    rt, address = served
    entered, _release = daemons.gate("edges")
    if args[0] == "send":  # make the send wait for room: the gate is busy and its lane full
        rt.send("gate@1", "busy")
        assert entered.wait(5)
        rt.send("gate@1", "queued")
    process = subprocess.Popen(
        [str(TIERD), *args, "--endpoint", address],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        if args[0] == "request":
            assert entered.wait(10)
        else:
            wait_until(lambda: rt.statistics()[0].waiting_for_room == 1, timeout=10)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert (process.returncode, out, err) == (130, "", f"tierd {args[0]}: interrupted\n")


@pytest.mark.parametrize("command", ["status", "send", "cancel"])
def test_ctrl_c_while_nothing_answers_is_one_line_and_exit_130(silent_router, command):
    """Ctrl-C while an endpoint never answers: `interrupted`, exit 130, no traceback."""
    router, address = silent_router
    args = {"status": ["status"], "send": ["send", "echo@1", "1"], "cancel": ["cancel", "x"]}
    process = subprocess.Popen(
        [str(TIERD), *args[command], "--endpoint", address, "--timeout", "30"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert router.poll(10_000), "the command sent nothing"
        router.recv_multipart()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert (process.returncode, out, err) == (130, "", f"tierd {command}: interrupted\n")


def test_request_takes_a_priority(served):
    """`tierd request --priority high` sends the request at priority 5."""
    _, address = served
    done = run_tierd("request", "priority@1", "--priority", "high", "--endpoint", address)
    assert (done.returncode, done.stdout) == (0, "5\n"), done.stderr
    done = run_tierd("request", "priority@1", "--priority", "3", "--endpoint", address)
    assert (done.returncode, done.stdout) == (0, "3\n"), done.stderr
    line = one_line(run_tierd("request", "priority@1", "--priority", "urgent"), 2)
    assert line.startswith("tierd request: argument --priority: unknown priority 'urgent'")


def test_a_payload_comes_from_json_a_file_or_stdin(served, tmp_path):
    """PAYLOAD is JSON, `@file` (JSON in a file) or `-` (JSON on standard input)."""
    _, address = served
    payload = {"n": list(range(1000)), "text": "é"}
    (tmp_path / "payload.json").write_text(json.dumps(payload), encoding="utf-8")
    for argument, stdin in ((json.dumps(payload), None), ("@payload.json", None), ("-", "")):
        done = run_tierd(
            "request", "echo@1", argument, "--endpoint", address, cwd=tmp_path,
            stdin=json.dumps(payload) if argument == "-" else stdin,
        )  # fmt: skip
        assert (done.returncode, json.loads(done.stdout)) == (0, payload), done.stderr
    done = run_tierd("send", "echo@1", "@payload.json", "--endpoint", address, cwd=tmp_path)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("argument", "stdin", "expected"),
    [
        ("@missing.json", None, "cannot read the payload file missing.json: No such file"),
        ("@bad.json", None, "the payload in bad.json is not JSON: Expecting"),
        ("-", "not json", "the payload on standard input is not JSON: Expecting value"),
        ("@", None, "'@' needs a file name"),
        ("{x", None, "the payload is not JSON (Expecting property name"),
    ],
    ids=["missing-file", "bad-file", "bad-stdin", "no-file-name", "bad-json"],
)
def test_a_bad_payload_is_one_line_with_exit_2(served, tmp_path, argument, stdin, expected):
    """A payload file that cannot be read, or text that is not JSON: one line, exit 2, no send."""
    rt, address = served
    (tmp_path / "bad.json").write_text("[1, 2")
    before = received(rt)
    done = run_tierd(
        "request", "echo@1", argument, "--endpoint", address, cwd=tmp_path, stdin=stdin
    )
    assert one_line(done, 2).startswith(f"tierd request: {expected}")
    assert received(rt) == before


def test_cancel_of_an_unknown_id_says_so_plainly_with_exit_1(served):
    """`tierd cancel` of an id no level holds: one plain line (no internal class name), exit 1."""
    _, address = served
    line = one_line(run_tierd("cancel", "deadbeef", "--endpoint", address), 1)
    assert line == (
        "tierd cancel: no level holds message deadbeef: it was handled already, "
        "or the id is unknown"
    )


def dead_letter(rt: tierd.Runtime) -> str:
    """Make one dead letter on level 1 (a crashed notification); its id."""
    message_id = rt.send("crasher@1", "boom")
    wait_until(lambda: message_id in {letter.message.id for letter in rt.dead_letters(1)})
    return message_id


def test_purge_reports_the_ids_it_did_not_find(served):
    """`dead-letters purge ID…` purges those it finds and names, with exit 1, those it did not."""
    rt, address = served
    kept = dead_letter(rt)
    done = run_tierd("dead-letters", "purge", kept, "deadbeef", "--endpoint", address)
    assert done.stdout == "1 purged\n"
    assert one_line(done, 1) == "tierd dead-letters: no dead letter deadbeef"
    assert rt.dead_letters(1) == []


@pytest.mark.parametrize("action", ["purge", "replay"])
def test_purge_and_replay_without_ids_refuse_unless_all(served, action):
    """`purge`/`replay` with no ids refuse (exit 2) and touch nothing; `--all` does them all."""
    rt, address = served
    kept = dead_letter(rt)
    line = one_line(run_tierd("dead-letters", action, "--endpoint", address), 2)
    assert line == (
        f"tierd dead-letters: {action} got no ids: pass the ids to {action} "
        f"(see tierd dead-letters list), or --all to {action} every dead letter"
    )
    assert [letter.message.id for letter in rt.dead_letters(1)] == [kept]
    done = run_tierd("dead-letters", action, "--all", "--endpoint", address)
    assert done.returncode == 0, done.stderr
    assert kept not in {letter.message.id for letter in rt.dead_letters(1)}


def test_send_timeout_says_what_it_means():
    """`tierd send --help` says --timeout is how long the message may wait before it expires."""
    text = " ".join(run_tierd("send", "--help").stdout.split())
    assert (
        "--timeout TIMEOUT seconds the message may wait in a queue (and for room, with --wait) "
        "before it is dead-lettered as expired (default 30)"
    ) in text


def test_status_shows_the_current_dead_letters_uptime_version_and_endpoint(served):
    """`tierd status` counts the dead letters kept now (not ever); uptime, version, endpoint."""
    rt, address = served
    purged, kept = dead_letter(rt), dead_letter(rt)
    assert run_tierd("dead-letters", "purge", purged, "--endpoint", address).returncode == 0
    done = run_tierd("status", "--endpoint", address)
    assert done.returncode == 0, done.stderr
    heading, level_line = done.stdout.splitlines()[:2]
    assert heading.startswith(f"runtime tierd (tierd {tierd.__version__}) at {address}, up ")
    assert "dead letters 1," in level_line
    report = json.loads(run_tierd("status", "--json", "--endpoint", address).stdout)
    assert (report["version"], report["endpoint"]) == (tierd.__version__, address)
    assert report["uptime"] > 0
    assert report["levels"][0]["dead_letters_kept"] == 1
    assert report["levels"][0]["dead_letters"] == {"handler_error": 2}
    assert kept in {letter.message.id for letter in rt.dead_letters(1)}


def test_restart_brings_back_a_given_up_daemon_and_refuses_an_unknown_one(make_runtime):
    """`tierd restart`: a daemon given up (supervision.stop) serves again; a typo is exit 1."""
    address = endpoint()
    rt = make_runtime(
        network_config(
            address,
            level(1, daemon("fragile", "Fragile", supervision={"stop": ["ValueError"]})),
        )
    )
    with pytest.raises(tierd.RemoteError):
        rt.request("fragile@1", "crash", timeout=5)
    given_up = run_tierd("request", "fragile@1", '"fine"', "--endpoint", address)
    assert "tierd restart fragile@1" in one_line(given_up, 1)
    done = run_tierd("restart", "fragile@1", "--endpoint", address)
    assert (done.returncode, done.stdout.split()[:2]) == (0, ["restarting", "fragile@1"])
    again = run_tierd("request", "fragile@1", '"fine"', "--endpoint", address)
    assert (again.returncode, again.stdout.strip()) == (0, '"fine"')
    unknown = one_line(run_tierd("restart", "nobody@1", "--endpoint", address), 1)
    assert unknown.startswith("tierd restart: UnknownRecipient: no recipient nobody@1")
