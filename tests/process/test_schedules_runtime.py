"""Schedules in a running `tierd.Runtime` and through `tierd schedules …` against `tierd run`."""

from __future__ import annotations

import json

import pytest

import tierd
from tests.network import echo_level, endpoint, network_config, to_toml
from tests.process.test_runtime import config
from tests.processes import run_tierd
from tierd.testing import wait_until

pytestmark = pytest.mark.timeout(60)

THREE = {"kind": "three", "class": "tests.process.kinds:Three"}
HOURLY = {"name": "hourly", "cron": "0 * * * *", "timezone": "Europe/Paris", "process": "three",
          "params": 1}  # fmt: skip


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def publish(self, topic, event):
        self.events.append((topic, dict(event)))


def test_run_now_submits_the_process_counts_it_and_publishes_the_event(make_runtime, tmp_path):
    """Runtime.schedules.run_now: a process runs; the metric and the event say fired."""
    rt = make_runtime({**config(tmp_path, THREE), "schedules": [HOURLY]})
    recorder = Recorder()
    rt.events.add(recorder)
    fire = rt.schedules.run_now("hourly")
    assert fire["outcome"] == "fired"
    assert rt.processes.wait(fire["process_id"], timeout=10)["result"] == "=4"
    text = rt.metrics.exposition().decode()
    assert 'tierd_schedule_fires_total{outcome="fired",schedule="hourly"} 1.0' in text
    assert 'tierd_schedule_fires_total{outcome="skipped",schedule="hourly"} 0.0' in text
    # The process's own events are published too (process.three.<id>): the schedule's is one.
    (topic, event) = [(t, e) for t, e in recorder.events if t.startswith("schedule.")][-1]
    assert topic == "schedule.hourly"
    assert event["process_id"] == fire["process_id"]


def test_an_interval_schedule_sends_its_notification_on_the_sweeper(make_runtime, tmp_path):
    """Every = 1 to recorder@1: the sweeper fires it within a few seconds, keyed in the store."""
    ping = {"name": "ping", "every": 1, "target": "recorder@1", "params": {"ping": True}}
    rt = make_runtime({**config(tmp_path), "schedules": [ping]})
    wait_until(lambda: rt.request("recorder@1", {"op": "dump"}, timeout=5), timeout=10)
    (doc,) = rt.schedules.list()
    assert doc["last_fire"]["outcome"] == "fired"
    assert doc["last_fire"]["message_id"]
    assert doc["every"] == 1.0


def test_schedules_without_a_processes_table_use_the_default_store(make_runtime, tmp_path):
    """A notification schedule alone opens processes.db in data_dir for its fires."""
    ping = {"name": "ping", "every": 3600, "target": "recorder@1"}
    cfg = {**config(tmp_path), "schedules": [ping]}
    del cfg["processes"]
    rt = make_runtime(cfg)
    assert rt.schedules.pause("ping")["paused"] is True
    assert (tmp_path / "data" / "processes.db").exists()


def test_a_runtime_without_schedules_says_so(make_runtime, tmp_path):
    """Runtime.schedules raises ConfigError naming the missing [[schedules]]."""
    rt = make_runtime(config(tmp_path, THREE))
    with pytest.raises(tierd.ConfigError, match=r"\[\[schedules\]\]"):
        rt.schedules.list()


@pytest.mark.slow
def test_the_cli_lists_pauses_and_runs_now_against_tierd_run(tierd_cli, tmp_path):
    """List shows the next fire (local and UTC); run-now makes a process appear; errors exit 2."""
    address = endpoint()
    cfg = network_config(address, echo_level(1), data_dir=str(tmp_path / "data"))
    cfg["processes"] = {"kinds": [THREE]}
    cfg["schedules"] = [HOURLY]
    path = tmp_path / "scheduled.toml"
    path.write_text(to_toml(cfg))
    server = tierd_cli("run", str(path), "--log-level", "warning")
    server.wait_for_line("running")

    listed = run_tierd("schedules", "list", "--json", "--endpoint", address)
    assert listed.returncode == 0, listed.stderr
    (doc,) = json.loads(listed.stdout)
    assert doc["name"] == "hourly"
    assert doc["next_fire_local"].endswith(("+01:00", "+02:00"))
    assert doc["next_fire_utc"].endswith("+00:00")
    assert doc["next_fire"] % 3600 == 0
    table = run_tierd("schedules", "list", "--endpoint", address)
    assert "hourly" in table.stdout
    assert "CET" in table.stdout or "CEST" in table.stdout
    assert "UTC" in table.stdout

    ran = run_tierd("schedules", "run-now", "hourly", "--json", "--endpoint", address)
    assert ran.returncode == 0, ran.stderr
    process_id = json.loads(ran.stdout)["process_id"]
    shown = run_tierd("process", "show", process_id, "--json", "--endpoint", address)
    assert json.loads(shown.stdout)["kind"] == "three"

    paused = run_tierd("schedules", "pause", "hourly", "--endpoint", address)
    assert paused.returncode == 0, paused.stderr
    assert "hourly: paused" in paused.stdout
    again = json.loads(run_tierd("schedules", "list", "--json", "--endpoint", address).stdout)
    assert again[0]["paused"] is True
    assert again[0]["last_fire"]["manual"] is True

    missing = run_tierd("schedules", "resume", "nightly", "--endpoint", address)
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        "tierd schedules resume: ScheduleNotFound: no schedule 'nightly' in this runtime's "
        "config; list them with 'tierd schedules list'"
    )


def test_client_schedules_are_runtime_schedules_over_the_wire(make_runtime, make_client, tmp_path):
    """Client.schedules: the same documents; an unknown name is ScheduleNotFound again."""
    address = endpoint()
    cfg = network_config(address, echo_level(1), data_dir=str(tmp_path / "data"))
    cfg["processes"] = {"kinds": [THREE]}
    cfg["schedules"] = [HOURLY]
    runtime = make_runtime(cfg)
    client = make_client(address)
    assert client.schedules.list() == runtime.schedules.list()
    fire = client.schedules.run_now("hourly")
    assert runtime.processes.wait(fire["process_id"], timeout=10)["status"] == "completed"
    assert client.schedules.pause("hourly")["paused"] is True
    assert runtime.schedules.list()[0]["paused"] is True
    assert client.schedules.resume("hourly")["paused"] is False
    with pytest.raises(tierd.ScheduleNotFound, match="no schedule 'nightly'") as raised:
        client.schedules.run_now("nightly")
    assert raised.value.name == "nightly"


def test_a_runtime_without_schedules_lists_none_over_the_wire(make_runtime, make_client, tmp_path):
    """schedule_list answers []; acting on a name answers ScheduleNotFound."""
    address = endpoint()
    runtime = make_runtime(network_config(address, echo_level(1), data_dir=str(tmp_path / "d")))
    client = make_client(address)
    assert runtime.config.schedules == []
    assert client.schedules.list() == []
    with pytest.raises(tierd.ScheduleNotFound):
        client.schedules.pause("hourly")
