"""Daemon pools (``instances = N``) on a fake clock: spread, IDLE per instance, restarts."""

from __future__ import annotations

from tests.orchestrators.manual import ManualLevel, spec
from tierd._outcome import Outcome
from tierd.actors.states import DaemonState
from tierd.messaging.message import Address, Message
from tierd.orchestrators._supervision import RestartPolicy, SupervisionPolicy

RESTART_ON_RUNTIME_ERROR = SupervisionPolicy(restart=("RuntimeError",))
WORKER = Address("worker", 1)


def _note(manual: ManualLevel, payload: object) -> Message:
    message = Message.notification(Address("client", 0), WORKER, payload)
    return message.replace(created_at=manual.clock.time())


def _raise(message: Message) -> None:
    raise RuntimeError(f"broke on {message.payload}")


def _states(manual: ManualLevel) -> dict[str, DaemonState]:
    return {key: slot.state for key, slot in manual.level.slots.items()}


def test_messages_spread_over_idle_instances_one_each():
    """Three instances take the first three messages, one each; the rest wait in the one lane."""
    manual = ManualLevel([spec(instances=3)])
    for n in range(5):
        manual.level.submit(_note(manual, n), None)
    executors = manual.executors("worker")
    assert [[m.payload for m in ex.inbox] for ex in executors] == [[0], [1], [2]]
    assert set(_states(manual).values()) == {DaemonState.WORKING}
    assert manual.level.statistics().queued == 2


def test_no_instance_holds_two_messages_at_once_with_prefetch_1():
    """Each instance finishing takes the next queued message itself, never more than one."""
    manual = ManualLevel([spec(instances=2)])
    for n in range(6):
        manual.level.submit(_note(manual, n), None)
    first, second = manual.executors("worker")
    handled = manual.handle_next("worker", executor=first, one=True)
    assert [m.payload for m in handled] == [0]
    assert [m.payload for m in first.inbox] == [2]  # handed back to the instance that finished
    assert len(second.inbox) == 1
    for slot in manual.level.slots.values():
        assert len(slot.in_flight) <= 1


def test_prefetch_applies_per_instance():
    """With prefetch 2 and two instances, four messages are in hand, two per instance."""
    manual = ManualLevel([spec(instances=2, prefetch=2)])
    for n in range(5):
        manual.level.submit(_note(manual, n), None)
    assert sorted(len(slot.in_flight) for slot in manual.level.slots.values()) == [2, 2]
    assert manual.level.statistics().queued == 1


def test_a_crashed_instance_restarts_alone_with_its_own_restart_history():
    """One instance crashes: only it goes to ERROR and restarts; the others keep working."""
    policy = RestartPolicy(initial_delay=0.5)
    manual = ManualLevel([spec(instances=3, restart=policy, supervision=RESTART_ON_RUNTIME_ERROR)])
    for n in range(3):
        manual.level.submit(_note(manual, n), None)
    zero, one, two = manual.executors("worker")
    manual.handle_next("worker", _raise, executor=one)
    assert _states(manual) == {
        "worker#0": DaemonState.WORKING, "worker#1": DaemonState.ERROR,
        "worker#2": DaemonState.WORKING,
    }  # fmt: skip
    assert one.stopped
    assert not zero.stopped
    assert not two.stopped
    manual.advance(0.5)
    assert _states(manual)["worker#1"] is DaemonState.IDLE
    assert len(manual.executors("worker")) == 3
    restarts = {d.daemon: d.restarts for d in manual.level.statistics().daemons}
    assert restarts == {"worker#0": 0, "worker#1": 1, "worker#2": 0}
    manual.handle_next("worker", executor=zero)  # the old generation of #0 still reports fine
    assert _states(manual)["worker#0"] is DaemonState.IDLE


def test_a_pool_is_given_up_only_when_every_instance_is():
    """An instance that stops is given up alone; the daemon's messages go to the others."""
    stop = SupervisionPolicy(stop=("RuntimeError",))
    manual = ManualLevel([spec(instances=2, supervision=stop)])
    manual.level.submit(_note(manual, "a"), None)
    first = manual.executors("worker")[0]
    manual.handle_next("worker", _raise, executor=first)
    manual.level.submit(_note(manual, "b"), None)
    [second] = manual.executors("worker")
    assert [m.payload for m in second.inbox] == ["b"]
    manual.handle_next("worker", _raise, executor=second)
    manual.level.submit(_note(manual, "c"), None)
    assert manual.level.statistics().dead_letters.get("daemon_gave_up") == 1
    given_up = {d.daemon: d.given_up for d in manual.level.statistics().daemons}
    assert given_up == {"worker#0": True, "worker#1": True}


def test_pause_and_restart_address_every_instance():
    """Pausing a pool's address pauses each instance; `restart_daemon` brings all back."""
    stop = SupervisionPolicy(stop=("RuntimeError",))
    manual = ManualLevel([spec(instances=2, supervision=stop)])
    assert manual.level.set_paused("worker", paused=True)
    manual.level.submit(_note(manual, 1), None)
    assert all(not ex.inbox for ex in manual.executors("worker"))
    assert manual.level.set_paused("worker", paused=False)
    first = next(ex for ex in manual.executors("worker") if ex.inbox)
    manual.handle_next("worker", _raise, executor=first)
    assert manual.level.restart_daemon("worker")
    assert not any(slot.given_up for slot in manual.level.slots.values())
    assert len(manual.executors("worker")) == 2


def test_statistics_name_each_instance_and_a_single_daemon_keeps_its_id():
    """A pool reports ``id#index`` per instance; ``instances = 1`` reports the plain id."""
    manual = ManualLevel([spec(instances=2), spec("solo")])
    names = [d.daemon for d in manual.level.statistics().daemons]
    assert names == ["worker#0", "worker#1", "solo"]


def test_an_instance_blocked_on_its_request_is_the_only_one_blocked():
    """A request from one instance BLOCKs that instance alone; its reply unblocks it."""
    manual = ManualLevel([spec(instances=2), spec("echo")])
    manual.level.submit(_note(manual, "a"), None)
    first = manual.executors("worker")[0]
    request = Message.request(WORKER, Address("echo", 1), "ping")
    waiter: Outcome[object] = Outcome()
    manual.level.request("worker", first.generation, request, waiter)
    assert _states(manual)["worker#0"] is DaemonState.BLOCKED
    assert _states(manual)["worker#1"] is DaemonState.IDLE
    manual.level.submit(_note(manual, "b"), None)  # goes to the free instance
    assert [m.payload for m in manual.executors("worker")[1].inbox] == ["b"]
    manual.handle_next("echo")
    reply = waiter.wait(1)
    assert isinstance(reply, Message)
    assert reply.payload == "ping"
    assert _states(manual)["worker#0"] is DaemonState.WORKING


def test_a_stale_generation_of_a_pool_instance_is_ignored():
    """A report from an executor replaced after a crash changes nothing."""
    policy = RestartPolicy(initial_delay=0.1)
    manual = ManualLevel([spec(instances=2, restart=policy, supervision=RESTART_ON_RUNTIME_ERROR)])
    manual.level.submit(_note(manual, "x"), None)
    old = manual.executors("worker")[0]
    manual.handle_next("worker", _raise, executor=old)
    manual.advance(0.1)
    assert manual.level.finished("worker", old.generation, "nope", None, None, 0.0) is None
