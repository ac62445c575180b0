"""The pure schedule decisions: fire times, due fires on a fake clock, DST, catch-up, overlap."""

from __future__ import annotations

import datetime
import zoneinfo

import pytest

from tierd.processes._schedules import (
    MAX_DUE,
    Cron,
    Every,
    Scheduler,
    ScheduleSpec,
    decide_overlap,
)
from tierd.testing import FakeClock

pytestmark = pytest.mark.timeout(30)

PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def at(*fields: int, zone: datetime.tzinfo = datetime.UTC) -> float:
    return datetime.datetime(*fields, tzinfo=zone).timestamp()  # type: ignore[misc]


def test_a_minute_cron_over_one_simulated_hour_fires_60_times():
    """Advancing a FakeClock second by second for an hour yields each minute's fire once."""
    clock = FakeClock()
    start = clock.time()
    assert start % 60 == 0
    scheduler = Scheduler([ScheduleSpec("every-minute", Cron("* * * * *"), process="k")])
    scheduler.start(clock.time(), {})
    fires = []
    for _ in range(3600):
        clock.advance(1)
        fires += scheduler.due(clock.time())
    assert [fire.fire_at for fire in fires] == [start + 60 * n for n in range(1, 61)]
    assert {fire.schedule for fire in fires} == {"every-minute"}


def test_an_interval_fires_at_its_multiples_since_the_epoch():
    """An interval of 90 s fires at whole multiples of 90 s, whenever the runtime started."""
    clock = FakeClock(wall=1_800_000_007.5)
    scheduler = Scheduler([ScheduleSpec("ninety", Every(90), target="echo@1")])
    scheduler.start(clock.time(), {})
    fires = []
    for _ in range(30):
        clock.advance(10)
        fires += scheduler.due(clock.time())
    assert [fire.fire_at for fire in fires] == [1_800_000_090.0, 1_800_000_180.0, 1_800_000_270.0]
    assert scheduler.next_fire("ninety") == 1_800_000_360.0


def test_a_cron_at_0230_in_paris_on_the_spring_dst_day_fires_at_0300():
    """On 2026-03-29 02:30 does not exist in Paris: cronsim fires at 03:00 CEST, once."""
    cron = Cron("30 2 * * *", "Europe/Paris")
    first = cron.next_after(at(2026, 3, 28, 12, 0, zone=PARIS))
    assert first == at(2026, 3, 29, 1, 0)  # 03:00 CEST is 01:00 UTC
    assert datetime.datetime.fromtimestamp(first, PARIS).strftime("%H:%M %Z") == "03:00 CEST"
    assert cron.next_after(first) == at(2026, 3, 30, 0, 30)  # back to 02:30 CEST


def test_a_cron_at_0230_in_paris_on_the_autumn_dst_day_fires_once():
    """On 2026-10-25 02:30 comes twice in Paris: the fire runs at the first, in CEST, only."""
    cron = Cron("30 2 * * *", "Europe/Paris")
    first = cron.next_after(at(2026, 10, 24, 12, 0, zone=PARIS))
    assert first == at(2026, 10, 25, 0, 30)  # 02:30 CEST
    assert cron.next_after(first) == at(2026, 10, 26, 1, 30)  # 02:30 CET the next day


def test_a_cron_is_read_in_its_timezone():
    """'0 9 * * *' in Asia/Tokyo fires at 00:00 UTC."""
    cron = Cron("0 9 * * *", "Asia/Tokyo")
    assert cron.next_after(at(2026, 6, 1, 1, 0)) == at(2026, 6, 2, 0, 0)


def test_catch_up_runs_the_fires_missed_within_its_window_each_once():
    """Stopped at t, started at t + 10 min with catch_up 300: the last 5 minutes fire."""
    t = 1_800_000_000.0
    spec = ScheduleSpec("minutely", Cron("* * * * *"), process="k", catch_up=300)
    scheduler = Scheduler([spec])
    scheduler.start(t + 600, {"minutely": t})
    fires = scheduler.due(t + 600)
    assert [fire.fire_at for fire in fires] == [t + 60 * n for n in range(6, 11)]
    assert scheduler.due(t + 600) == []


def test_a_first_start_catches_nothing_up():
    """A schedule that never fired starts from now, whatever its catch_up."""
    t = 1_800_000_000.0
    spec = ScheduleSpec("minutely", Cron("* * * * *"), process="k", catch_up=3600)
    scheduler = Scheduler([spec])
    scheduler.start(t + 30, {})
    assert scheduler.due(t + 30) == []
    assert scheduler.next_fire("minutely") == t + 60


def test_without_catch_up_a_restart_fires_only_the_next_fire():
    """catch_up 0: nothing missed is run; the first fire is the next one after the start."""
    t = 1_800_000_000.0
    scheduler = Scheduler([ScheduleSpec("minutely", Cron("* * * * *"), process="k")])
    scheduler.start(t + 630, {"minutely": t})
    assert scheduler.due(t + 630) == []
    assert scheduler.next_fire("minutely") == t + 660


def test_catch_up_never_runs_a_fire_already_recorded():
    """The cursor starts after the last recorded fire when that is inside the window."""
    t = 1_800_000_000.0
    spec = ScheduleSpec("minutely", Cron("* * * * *"), process="k", catch_up=3600)
    scheduler = Scheduler([spec])
    scheduler.start(t + 180, {"minutely": t + 60})
    assert [fire.fire_at for fire in scheduler.due(t + 180)] == [t + 120, t + 180]


def test_a_long_catch_up_comes_in_bounded_batches():
    """At most MAX_DUE fires per call; the rest follow, none twice."""
    t = 1_800_000_000.0
    spec = ScheduleSpec("fast", Every(1), process="k", catch_up=2500)
    scheduler = Scheduler([spec])
    scheduler.start(t, {"fast": t - 9000})
    batches = [scheduler.due(t) for _ in range(4)]
    assert [len(batch) for batch in batches] == [MAX_DUE, MAX_DUE, 500, 0]
    times = [fire.fire_at for batch in batches for fire in batch]
    assert times == [t - 2500 + n for n in range(1, 2501)]


def test_a_paused_schedule_lets_its_fires_pass_and_resumes_from_now():
    """Paused: no fire is returned and none piles up; resumed, it fires from the next on."""
    t = 1_800_000_000.0
    scheduler = Scheduler([ScheduleSpec("m", Cron("* * * * *"), process="k")])
    scheduler.start(t, {})
    assert scheduler.due(t + 300, paused={"m"}) == []
    scheduler.resume("m", t + 300)
    assert [fire.fire_at for fire in scheduler.due(t + 360)] == [t + 360]


def test_next_due_is_the_earliest_next_fire():
    """The driver asks nothing more until then."""
    t = 1_800_000_000.0
    scheduler = Scheduler([
        ScheduleSpec("hourly", Cron("0 * * * *"), process="k"),
        ScheduleSpec("often", Every(45), process="k"),
    ])  # fmt: skip
    scheduler.start(t, {})
    assert scheduler.next_due() == t + 45
    assert Scheduler([]).next_due() == float("inf")


@pytest.mark.parametrize(
    ("overlap", "unfinished", "holding", "decision"),
    [
        ("skip", False, False, "fire"),
        ("skip", True, False, "skip"),
        ("queue", False, False, "fire"),
        ("queue", True, False, "hold"),
        ("queue", True, True, "skip"),
        ("queue", False, True, "skip"),
        ("allow", True, False, "fire"),
        ("allow", True, True, "fire"),
    ],
)
def test_overlap_decides_by_the_last_run(overlap, unfinished, holding, decision):
    """Overlap skip drops a fire while the last run is unfinished; queue holds one; allow fires."""
    assert decide_overlap(overlap, previous_unfinished=unfinished, holding=holding) == decision


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Cron("61 * * * *"), "bad cron expression '61 \\* \\* \\* \\*': Bad minute"),
        (lambda: Cron("* * *"), "bad cron expression"),
        (lambda: Cron("* * * * *", "Mars/Base"), "unknown timezone 'Mars/Base'"),
        (lambda: Every(0), "every must be a positive number"),
    ],
)
def test_bad_triggers_are_refused_with_what_is_wrong(make, message):
    """A bad expression, zone or interval raises ValueError naming it."""
    with pytest.raises(ValueError, match=message):
        make()
