"""`ScheduleDriver` on a real SQLite store and runner, driven by a FakeClock: no sleeps."""

from __future__ import annotations

import random
import sqlite3
import threading
from typing import TYPE_CHECKING, Any

import pytest

import tierd
from tests.process import kinds
from tests.process.manual import Harness, ManualExecutor
from tierd.processes._runner import ProcessRunner
from tierd.processes._schedule_driver import ScheduleDriver
from tierd.processes._schedules import Cron, Every, ScheduleSpec
from tierd.processes._sqlite import SqliteProcessStore
from tierd.testing import FakeClock

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.timeout(60)

MINUTE = 60.0


class Recorder:
    """An `EventSink` that keeps what it is given."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def publish(self, topic: str, event: Any) -> None:
        self.events.append((topic, dict(event)))


class Sent:
    """A `send` that records the notifications, or refuses them while ``refuse`` is set."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, Any]] = []
        self.refuse: Exception | None = None

    def __call__(self, target: str, payload: Any) -> str:
        if self.refuse is not None:
            raise self.refuse
        self.messages.append((target, payload))
        return f"m{len(self.messages)}"


class Scheduled:
    """A harness (runner, store, manual executor, fake clock) and a driver on it."""

    def __init__(self, harness: Harness, *specs: ScheduleSpec) -> None:
        self.harness = harness
        self.clock: FakeClock = harness.clock
        self.events = Recorder()
        self.sent = Sent()
        self.specs = specs
        self.driver = self._driver()

    def _driver(self) -> ScheduleDriver:
        driver = ScheduleDriver(
            self.specs, self.harness.store, runner=self.harness.runner, send=self.sent,
            clock=self.clock, events=self.events,
        )  # fmt: skip
        driver.start()
        return driver

    def restart(self, after: float) -> None:
        """Stop, let ``after`` seconds pass with nothing running, start on the same file."""
        self.driver.stop()
        self.clock.advance(after)
        self.harness.restart()
        self.driver = self._driver()

    def run_for(self, seconds: int, step: float = 1.0) -> None:
        for _ in range(int(seconds / step)):
            self.clock.advance(step)
            self.driver.tick()

    def rows(self, schedule: str | None = None) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.harness.path) as db:
            query = "SELECT schedule, fire_at, outcome, process_id, message_id, manual FROM "
            query += "schedule_fires" + (" WHERE schedule = ?" if schedule else "")
            return db.execute(
                query + " ORDER BY fire_at", (schedule,) if schedule else ()
            ).fetchall()

    def process_count(self) -> int:
        with sqlite3.connect(self.harness.path) as db:
            return int(db.execute("SELECT count(*) FROM processes").fetchone()[0])


@pytest.fixture
def scheduled(harness: Any) -> Iterator[Any]:
    """Make a `Scheduled` over a fresh harness: ``scheduled(*specs, definitions=...)``."""
    made: list[Scheduled] = []

    def make(*specs: ScheduleSpec, definitions: Any = None, clock: Any = None) -> Scheduled:
        three = kinds.Three.definition().replace(max_concurrent=100)
        made.append(Scheduled(harness(*(definitions or [three]), clock=clock), *specs))
        return made[-1]

    yield make
    for one in made:
        one.driver.stop()


def minutely(**options: Any) -> ScheduleSpec:
    options.setdefault("process", "three")
    options.setdefault("params", 1)
    return ScheduleSpec("minutely", Cron("* * * * *"), **options)


def test_a_minute_cron_over_one_simulated_hour_fires_60_processes(scheduled):
    """Ticking once a simulated second for an hour: 60 fires recorded, 60 processes submitted."""
    s = scheduled(minutely(overlap="allow"))
    start = s.clock.time()
    s.run_for(3600)
    rows = s.rows()
    assert [row[1] for row in rows] == [start + MINUTE * n for n in range(1, 61)]
    assert {row[2] for row in rows} == {"fired"}
    assert len({row[3] for row in rows}) == 60
    assert s.process_count() == 60
    assert s.driver.statistics()[("minutely", "fired")] == 60


def test_an_interval_fires_on_its_multiples(scheduled):
    """Every = 45 over 3 simulated minutes: four notifications, at multiples of 45 s."""
    s = scheduled(ScheduleSpec("ping", Every(45), target="echo@1", params={"p": 1}))
    start = s.clock.time()
    s.run_for(180)
    assert [row[1] for row in s.rows()] == [start + 45 * n for n in range(1, 5)]
    assert s.sent.messages == [("echo@1", {"p": 1})] * 4
    assert [row[4] for row in s.rows()] == ["m1", "m2", "m3", "m4"]


def test_overlap_skip_records_fires_while_the_last_run_is_unfinished_as_skipped(scheduled):
    """The first run never finishes (its attempts wait): the next fires are skipped, then fire."""
    s = scheduled(minutely())
    s.run_for(180)
    assert [row[2] for row in s.rows()] == ["fired", "skipped", "skipped"]
    assert s.process_count() == 1
    s.harness.run_all()  # the first run completes
    s.run_for(60)
    assert [row[2] for row in s.rows()] == ["fired", "skipped", "skipped", "fired"]
    assert s.process_count() == 2


def test_overlap_queue_holds_one_fire_until_the_last_run_ends(scheduled):
    """Queue: the second fire waits (queued), a third is skipped; the held one runs after."""
    s = scheduled(minutely(overlap="queue"))
    s.run_for(180)
    assert [row[2] for row in s.rows()] == ["fired", "queued", "skipped"]
    assert s.process_count() == 1
    s.harness.run_all()
    s.driver.tick()
    assert [row[2] for row in s.rows()] == ["fired", "fired", "skipped"]
    assert s.process_count() == 2
    queued_then_fired = s.rows()[1]
    assert queued_then_fired[3] is not None


def test_overlap_allow_fires_whatever_runs(scheduled):
    """Allow: every fire submits a process though none has finished."""
    s = scheduled(minutely(overlap="allow"))
    s.run_for(300)
    assert [row[2] for row in s.rows()] == ["fired"] * 5
    assert s.process_count() == 5


def test_catch_up_after_downtime_runs_the_fires_of_its_window_once(scheduled):
    """Stopped at t, started at t + 10 min with catch_up 300: 5 fires, each under its own time."""
    s = scheduled(minutely(overlap="allow", catch_up=300))
    s.run_for(60)
    t = s.clock.time()
    assert len(s.rows()) == 1
    s.restart(after=600)
    s.driver.tick()
    rows = s.rows()
    assert [row[1] for row in rows] == [t] + [t + MINUTE * n for n in range(6, 11)]
    assert s.process_count() == 6
    s.driver.tick()
    assert len(s.rows()) == 6


def test_without_catch_up_downtime_fires_are_not_run(scheduled):
    """catch_up 0: after the restart only the next fire runs."""
    s = scheduled(minutely(overlap="allow"))
    s.run_for(60)
    s.restart(after=630)
    s.driver.tick()
    assert len(s.rows()) == 1
    s.run_for(30)
    assert len(s.rows()) == 2


def sharing(
    store: SqliteProcessStore, name: str, clock: FakeClock, spec: ScheduleSpec
) -> ScheduleDriver:
    """A runtime's runner and driver on a store another one uses too."""
    runner = ProcessRunner(
        [kinds.Three.definition().replace(max_concurrent=100)], store,
        clock=clock, executor=ManualExecutor(), owner=name,
    )  # fmt: skip
    runner.start()
    driver = ScheduleDriver([spec], store, runner=runner, send=Sent(), clock=clock, owner=name)
    driver.start()
    return driver


def test_two_runtimes_sharing_one_store_fire_each_minute_once(tmp_path):
    """Two drivers and runners, each with its own FakeClock and thread, on one SQLite file.

    Both tick through the same 20 simulated minutes at once, racing to claim
    each fire: every minute is recorded once and submits one process.
    """
    store = SqliteProcessStore(tmp_path / "processes.db")
    spec = minutely(overlap="allow")
    drivers: list[tuple[FakeClock, ScheduleDriver]] = []
    try:
        for name, offset in (("a", 0.0), ("b", 0.25)):
            clock = FakeClock(monotonic=1000.0 + offset, wall=1_800_000_000.0 + offset)
            drivers.append((clock, sharing(store, name, clock, spec)))
        start = threading.Barrier(2)

        def tick_for_20_minutes(clock: FakeClock, driver: ScheduleDriver) -> None:
            start.wait(timeout=10)
            for _ in range(20 * 60):
                clock.advance(1)
                driver.tick()

        threads = [threading.Thread(target=tick_for_20_minutes, args=pair) for pair in drivers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=50)
        with sqlite3.connect(tmp_path / "processes.db") as db:
            fires = db.execute("SELECT fire_at FROM schedule_fires ORDER BY fire_at").fetchall()
            processes = db.execute("SELECT count(*) FROM processes").fetchone()[0]
        assert [row[0] for row in fires] == [1_800_000_000.0 + MINUTE * n for n in range(1, 21)]
        assert processes == 20
        fired = [driver.statistics()[("minutely", "fired")] for _, driver in drivers]
        assert sum(fired) == 20
    finally:
        for _, driver in drivers:
            driver.stop()
        store.close()


def test_of_two_runtimes_each_takes_the_fires_it_claims_first(tmp_path):
    """Whichever runtime ticks first at a fire time fires it; the other finds it taken."""
    store = SqliteProcessStore(tmp_path / "processes.db")
    drivers = []
    try:
        for name in ("a", "b"):
            clock = FakeClock()
            drivers.append((clock, sharing(store, name, clock, minutely(overlap="allow"))))
        chance = random.Random(12)
        for _ in range(10 * 60):
            for clock, driver in chance.sample(drivers, 2):
                clock.advance(1)
                driver.tick()
        fired = [driver.statistics()[("minutely", "fired")] for _, driver in drivers]
        assert sum(fired) == 10
        assert all(count > 0 for count in fired), fired
        assert len(store.fires("minutely")) == 10
    finally:
        for _, driver in drivers:
            driver.stop()
        store.close()


def test_a_pause_is_kept_in_the_store_and_survives_a_restart(scheduled):
    """Paused, a schedule fires nothing, still paused after a restart; resumed, it fires again."""
    s = scheduled(minutely(overlap="allow"))
    assert s.driver.pause("minutely")["paused"] is True
    s.run_for(120)
    assert s.rows() == []
    s.restart(after=0)
    assert s.driver.list()[0]["paused"] is True
    s.run_for(120)
    assert s.rows() == []
    assert s.driver.resume("minutely")["paused"] is False
    s.run_for(60)
    assert len(s.rows()) == 1


def test_run_now_fires_once_now_under_its_own_key(scheduled):
    """run-now submits at once, even while paused and over an unfinished run, keyed by now."""
    s = scheduled(minutely())
    s.run_for(60)
    s.driver.pause("minutely")
    s.clock.advance(5)
    fire = s.driver.run_now("minutely")
    assert fire["outcome"] == "fired"
    assert fire["manual"] is True
    assert fire["fire_time"] == s.clock.time()
    assert s.harness.runner.get(fire["process_id"])["kind"] == "three"
    assert [row[5] for row in s.rows()] == [0, 1]
    again = s.driver.run_now("minutely")  # the same instant: a key of its own still
    assert again["fire_time"] > fire["fire_time"]
    assert s.process_count() == 3


def test_a_refused_fire_is_recorded_failed_with_why(scheduled):
    """The target refuses (queue full): outcome failed, the reason kept; the next fire fires."""
    s = scheduled(ScheduleSpec("ping", Every(60), target="echo@1"))
    s.sent.refuse = tierd.Rejected("the queue of level 1 is full")
    s.run_for(60)
    s.sent.refuse = None
    s.run_for(60)
    assert [row[2] for row in s.rows()] == ["failed", "fired"]
    last = s.driver.list()[0]["last_fire"]
    assert last["outcome"] == "fired"
    first = s.harness.store.fires("ping", limit=5)[-1]
    assert first.detail == "Rejected: the queue of level 1 is full"
    assert s.driver.statistics()[("ping", "failed")] == 1


def test_params_the_kind_refuses_fail_the_fire(scheduled):
    """A process kind whose check refuses the params: failed, with the check's message."""
    s = scheduled(
        ScheduleSpec("checked", Every(60), process="checked", params={"id": -1}),
        definitions=[kinds.Checked.definition().replace(kind="checked")],
    )
    s.run_for(60)
    assert [row[2] for row in s.rows()] == ["failed"]
    assert "id must be >= 0" in (s.harness.store.fires("checked")[0].detail or "")


def test_each_fire_publishes_a_schedule_fired_event(scheduled):
    """Topic schedule.<name>; seq rises by one per schedule; fire_time, outcome and the ids."""
    s = scheduled(minutely(), ScheduleSpec("ping", Every(60), target="echo@1"))
    s.run_for(120)
    minute = [event for topic, event in s.events.events if topic == "schedule.minutely"]
    assert [(e["seq"], e["outcome"]) for e in minute] == [(1, "fired"), (2, "skipped")]
    assert minute[0]["process_id"] == s.rows("minutely")[0][3]
    assert minute[0]["fire_time"] == s.rows("minutely")[0][1]
    assert minute[0]["type"] == "schedule_fired"
    assert minute[0]["topic"] == "schedule.minutely"
    ping = [event for topic, event in s.events.events if topic == "schedule.ping"]
    assert [(e["seq"], e["message_id"]) for e in ping] == [(1, "m1"), (2, "m2")]


def test_list_shows_next_fire_in_local_time_and_utc_and_the_last_fire(scheduled):
    """The document of each schedule: trigger, timezone, next fire (both zones), last fire."""
    spec = ScheduleSpec("paris", Cron("30 2 * * *", "Europe/Paris"), process="three", params=1)
    s = scheduled(spec)
    (doc,) = s.driver.list()
    assert doc["cron"] == "30 2 * * *"
    assert doc["timezone"] == "Europe/Paris"
    assert doc["next_fire_local"].endswith("02:30:00+01:00") or doc["next_fire_local"].endswith(
        "02:30:00+02:00"
    )
    assert doc["next_fire_utc"].endswith("+00:00")
    assert doc["last_fire"] is None
    assert doc["paused"] is False


def test_an_unknown_name_raises_schedule_not_found(scheduled):
    """pause, resume and run_now of a name the config lacks: ScheduleNotFound naming it."""
    s = scheduled(minutely())
    for act in (s.driver.pause, s.driver.resume, s.driver.run_now):
        with pytest.raises(tierd.ScheduleNotFound, match="no schedule 'nightly'"):
            act("nightly")


def test_fires_older_than_keep_fires_are_pruned_by_the_tick(harness):
    """keep_fires: the hourly prune deletes older fires; the schedule's latest stays."""
    made = harness(kinds.Three.definition().replace(max_concurrent=100))
    spec = ScheduleSpec("ping", Every(60), target="echo@1")
    driver = ScheduleDriver([spec], made.store, runner=made.runner, send=Sent(),
                            clock=made.clock, keep_fires=600.0)  # fmt: skip
    driver.start()
    t = made.clock.time()
    for _ in range(60 * 30):  # 30 simulated minutes: 30 fires, one prune at the start
        made.clock.advance(1)
        driver.tick()
    assert len(made.store.fires("ping", limit=100)) == 30
    for _ in range(60 * 31):  # the next prune runs at t + 3601: it keeps from t + 3001 on
        made.clock.advance(1)
        driver.tick()
    kept = [fire.fire_at for fire in made.store.fires("ping", limit=100)]
    assert kept == [t + 60 * n for n in range(61, 50, -1)]
