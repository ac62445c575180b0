"""`tierd.Client` against a real ROUTER: requests, sends, status, backpressure, control.

The ``tierd`` commands that drive the same calls are checked here too.
"""

from __future__ import annotations

import json
import threading

import msgpack
import pytest
import zmq

import tierd
from tests import daemons
from tests.network import echo_level, endpoint, network_config
from tests.topology import daemon, level
from tierd.cli import main
from tierd.testing import wait_until

FAST_RESTART = {"initial_delay": 0.01}
LEVEL_2 = level(
    2, daemon("echo", "Echo"), daemon("sleeper", "Sleeper"), daemon("crasher", "Crasher")
)


def test_client_request_send_and_status(make_runtime, make_client):
    """A client gets replies, ids of accepted notifications, errors and the status."""
    address = endpoint()
    make_runtime(network_config(address, echo_level(1), LEVEL_2))
    client = make_client(address)
    assert client.request("echo@2", {"x": 1}, timeout=5) == {"x": 1}
    message_id = client.send("recorder@1", "hello", priority="high")
    assert isinstance(message_id, str)
    assert len(message_id) > 0
    assert wait_until(lambda: client.request("recorder@1", {"op": "dump"}, timeout=5) == ["hello"])
    with pytest.raises(tierd.UnknownRecipient):
        client.send("nope@1", "x")
    with pytest.raises(tierd.RemoteError, match="RuntimeError"):
        client.request("crasher@2", None, timeout=5)
    status = client.status()
    assert [entry["level"] for entry in status["levels"]] == [1, 2]
    daemons = {d["daemon"]: d for d in status["levels"][1]["daemons"]}
    assert daemons["echo"]["processed"] == 1
    assert daemons["echo"]["state"] == "IDLE"
    assert status["levels"][0]["queue_depth"] == {}


def test_eight_concurrent_clients_get_only_their_own_replies(make_runtime, make_client):
    """Eight clients in eight threads each get exactly their own replies."""
    address = endpoint()
    make_runtime(network_config(address, echo_level(1), LEVEL_2))
    clients = [make_client(address) for _ in range(8)]
    results: dict[int, list[object]] = {}

    def ask(worker: int) -> None:
        results[worker] = [
            clients[worker].request("echo@2", {"w": worker, "n": n}, timeout=10) for n in range(40)
        ]

    threads = [threading.Thread(target=ask, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {w: [{"w": w, "n": n} for n in range(40)] for w in range(8)}


def test_a_client_shared_by_two_threads_at_once_is_refused(make_runtime, make_client):
    """Using one Client from a second thread while a call is in progress raises a clear error."""
    address = endpoint()
    make_runtime(network_config(address, LEVEL_2))
    client = make_client(address)
    errors: list[BaseException] = []
    started = threading.Event()

    def slow() -> None:
        started.set()
        client.request("sleeper@2", {"seconds": 0.5}, timeout=5)

    thread = threading.Thread(target=slow)
    thread.start()
    started.wait()
    try:
        wait_until(client._busy.locked, timeout=2)
        client.request("echo@2", 1, timeout=1)
    except RuntimeError as error:
        errors.append(error)
    thread.join()
    assert len(errors) == 1
    assert "one Client" in str(errors[0]) or "its own Client" in str(errors[0])


@pytest.fixture
def served(make_runtime):
    """A runtime on a loopback endpoint: a gated daemon (queue_limit 1), a fragile one, echo."""
    address = endpoint()
    rt = make_runtime(
        network_config(
            address,
            level(
                1, daemon("gate", "Gate", options={"name": "wire"}),
                daemon("fragile", "Fragile", restart=FAST_RESTART), daemon("echo", "Echo"),
                queue_limit=1,
            ),
        )
    )  # fmt: skip
    return rt, address


def _occupy(rt):
    entered, release = daemons.gate("wire")
    rt.send("gate@1", "busy")
    assert entered.wait(5)
    return release


def test_a_full_queue_refuses_a_client_send(served, make_client):
    """Client.send to a full level raises Rejected('queue full'); the refusal is counted."""
    rt, address = served
    _occupy(rt)
    client = make_client(address)
    client.send("gate@1", 1)
    with pytest.raises(tierd.Rejected, match="queue full"):
        client.send("gate@1", 2)
    assert rt.statistics()[0].rejected == {"queue_full": 1}
    metrics = rt.metrics.exposition().decode()
    assert 'tierd_messages_rejected_total{level="1",reason="queue_full"} 1.0' in metrics


def test_a_client_may_wait_for_room(served, make_client):
    """Client.send(wait=True) is acked once the level has room, not before."""
    rt, address = served
    release = _occupy(rt)
    make_client(address).send("gate@1", 1)
    sent: list[str] = []
    waiting = make_client(address)
    sender = threading.Thread(target=lambda: sent.append(waiting.send("gate@1", 2, wait=True)))
    sender.start()
    wait_until(lambda: rt.statistics()[0].waiting_for_room == 1)
    assert sent == []
    release.set()
    sender.join(5)
    assert len(sent) == 1
    wait_until(lambda: rt.statistics()[0].daemons[0].processed == 3)


def test_cancel_pause_and_resume_over_the_wire(served, make_client):
    """A paused daemon gets nothing and shows paused; a queued message is cancelled by id."""
    rt, address = served
    client = make_client(address)
    client.pause("echo@1")
    status = client.status()
    (echo,) = [d for d in status["levels"][0]["daemons"] if d["daemon"] == "echo"]
    assert echo["paused"] is True
    assert 'tierd_daemon_paused{daemon="echo",level="1"} 1.0' in rt.metrics.exposition().decode()
    message_id = client.send("echo@1", "never handled")
    assert client.cancel(message_id) is True
    assert client.cancel(message_id) is False
    client.resume("echo@1")
    assert client.request("echo@1", "back", timeout=5) == "back"
    with pytest.raises(tierd.UnknownRecipient):
        client.pause("nope@1")


def test_dead_letters_list_replay_and_purge_over_the_wire(served, make_client):
    """A client lists a level's dead letters, replays one with a new id and purges the rest."""
    rt, address = served
    client = make_client(address)
    first = client.send("fragile@1", "crash")
    second = client.send("fragile@1", "crash")
    wait_until(lambda: len(rt.dead_letters(1)) == 2, timeout=5)
    letters = client.dead_letters(level=1)
    assert [(d["id"], d["reason"], d["level"]) for d in letters] == [
        (first, "handler_error", 1),
        (second, "handler_error", 1),
    ]
    replayed = client.replay_dead_letters(1, [first])
    assert set(replayed) == {first}
    wait_until(lambda: len(rt.dead_letters(1)) == 2, timeout=5)  # crashed again
    assert {d["id"] for d in client.dead_letters()} == {second, replayed[first]}
    assert client.purge_dead_letters(1) == 2
    assert client.dead_letters() == []
    with pytest.raises(tierd.UnknownRecipient):
        client.dead_letters(level=7)


def test_a_bad_control_frame_is_refused_and_the_runtime_stays_up(served):
    """An unknown operation or bad argument gets an error frame naming the problem."""
    rt, address = served
    context = zmq.Context()
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(address)
    try:
        for op, args in (("format_disk", {}), ("cancel", {"id": 5}), ("pause", {"target": "x"})):
            socket.send(msgpack.packb({"v": 1, "t": "control", "id": "q1", "op": op, "args": args}))
            assert socket.poll(5000)
            answer = msgpack.unpackb(socket.recv())
            assert answer["t"] == "error"
            assert answer["error"]["error"] == "Rejected"
    finally:
        socket.close()
        context.term()
    assert rt.request("echo@1", "still up", timeout=5) == "still up"


def test_the_commands_cancel_pause_resume_and_dead_letters(served, capsys):
    """``tierd pause|resume|cancel|dead-letters`` talk to the runtime and print what they did."""
    rt, address = served
    assert main(["pause", "echo@1", "--endpoint", address]) == 0
    message_id = rt.send("echo@1", "queued")
    assert main(["cancel", message_id, "--endpoint", address]) == 0
    assert main(["cancel", message_id, "--endpoint", address]) == 1
    assert main(["resume", "echo@1", "--endpoint", address]) == 0
    crashed = rt.send("fragile@1", "crash")
    wait_until(lambda: len(rt.dead_letters(1)) == 1)
    capsys.readouterr()
    assert main(["dead-letters", "list", "--json", "--level", "1", "--endpoint", address]) == 0
    (letter,) = json.loads(capsys.readouterr().out)
    assert (letter["id"], letter["reason"]) == (crashed, "handler_error")
    assert main(["dead-letters", "purge", crashed, "--endpoint", address]) == 0
    assert "1 purged" in capsys.readouterr().out
    assert main(["send", "gate@1", "1", "--endpoint", address]) == 0
    _occupy_after = daemons.gate("wire")
    assert _occupy_after[0].wait(5)
    assert main(["send", "gate@1", "2", "--endpoint", address]) == 0
    assert main(["send", "gate@1", "3", "--endpoint", address]) == 1
    assert "Rejected: queue full" in capsys.readouterr().err
