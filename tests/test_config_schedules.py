"""`[[schedules]]` in the config: every refusal names its key; a good table becomes a spec."""

from __future__ import annotations

from typing import Any

import pytest

import tierd
from tierd.config import override_runtime, parse_config
from tierd.processes._schedules import Cron, Every

pytestmark = pytest.mark.timeout(30)

BASE: dict[str, Any] = {
    "levels": [{"level": 1, "daemons": [{"id": "echo", "class": "tierd.actors.builtin:Echo"}]}],
    "processes": {"kinds": [{"kind": "report", "steps": [{"name": "ask", "target": "echo@1"}]}]},
}


def problems(*schedules: dict[str, Any], processes: bool = True) -> list[str]:
    data = {**BASE, "schedules": list(schedules)}
    if not processes:
        del data["processes"]
    try:
        parse_config(data, "s.toml")
    except tierd.ConfigError as error:
        return [problem.removeprefix("s.toml: ") for problem in error.problems]
    return []


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [
        ({"cron": "61 * * * *"}, "schedules[0].cron: bad cron expression '61 * * * *': Bad minute"),
        ({"cron": "* * *"}, "schedules[0].cron: bad cron expression '* * *': "),
        ({"cron": "* * * * *", "timezone": "Mars/Base"},
         "schedules[0].timezone: unknown timezone 'Mars/Base': use an IANA name"),
        ({"cron": "* * * * *", "every": 60},
         "schedules[0]: cron and every: give one of them (cron = '* * * * *' or every = 60), "
         "not both"),
        ({}, "schedules[0]: cron and every: give one of them (cron = '* * * * *' or every = 60), "
             "there is neither"),
        ({"every": 0}, "schedules[0].every: Input should be greater than 0"),
        ({"every": "soon"}, "schedules[0].every: not a duration: 'soon'"),
        ({"every": 60, "overlap": "never"},
         "schedules[0].overlap: Input should be 'skip', 'queue' or 'allow'"),
        ({"every": 60, "catch_up": -5}, "schedules[0].catch_up: not a duration: -5"),
        ({"every": 60, "process": "nightly"},
         "schedules[0].process: unknown process kind 'nightly'; this runtime runs: report"),
        ({"every": 60, "process": None, "target": "ghost@1"},
         "schedules[0].target: level 1 has no daemon 'ghost' (it has echo)"),
        ({"every": 60, "process": None, "target": "echo@7"},
         "schedules[0].target: no level serves 'echo@7'"),
        ({"every": 60, "target": "echo@1"},
         "schedules[0]: process and target: give one of them (process = 'kind' or "
         "target = 'daemon@level'), not both"),
        ({"every": 60, "process": None},
         "schedules[0]: process and target: give one of them (process = 'kind' or "
         "target = 'daemon@level'), there is neither"),
        ({"every": 60, "process": None, "target": "echo@1", "overlap": "queue"},
         "schedules[0]: overlap: applies to process schedules only"),
        ({"every": 60, "name": "no spaces"}, "schedules[0].name: String should match pattern"),
        ({"every": 60, "when": "now"}, "schedules[0].when: unknown key"),
    ],
)  # fmt: skip
def test_a_bad_schedule_is_refused_naming_its_key(schedule, problem):
    """One line per problem, starting with the schedule's key."""
    table = {"name": "nightly", "process": "report", **schedule}
    table = {key: value for key, value in table.items() if value is not None}
    found = problems(table)
    assert len(found) == 1, found
    assert found[0].startswith(problem), found


def test_a_name_declared_twice_is_refused_at_the_second():
    """Duplicate names: the second table's name key."""
    found = problems(
        {"name": "nightly", "every": 60, "process": "report"},
        {"name": "nightly", "cron": "0 3 * * *", "process": "report"},
    )
    assert found == ["schedules[1].name: schedule 'nightly' is declared twice"]


def test_a_process_schedule_needs_a_processes_table():
    """No [processes]: the kind is unknown, and the problem says how to declare one."""
    found = problems({"name": "nightly", "every": 60, "process": "report"}, processes=False)
    assert found == [
        "schedules[0].process: unknown process kind 'report'; "
        "this runtime runs: none (add [[processes.kinds]])"
    ]


def test_good_tables_become_specs_and_survive_a_runtime_override():
    """Cron with its zone, every as a duration, the defaults; override_runtime keeps them."""
    config = parse_config({
        **BASE,
        "schedules": [
            {"name": "paris", "cron": "30 2 * * *", "timezone": "Europe/Paris",
             "process": "report", "params": {"x": 1}, "overlap": "queue", "catch_up": "1h"},
            {"name": "ping", "every": "15m", "target": "echo@1"},
        ],
    })  # fmt: skip
    again = override_runtime(config, "test", endpoint="")
    paris, ping = (schedule.spec() for schedule in again.schedules)
    assert paris.trigger == Cron("30 2 * * *", "Europe/Paris")
    assert (paris.process, paris.params, paris.overlap, paris.catch_up) == (
        "report", {"x": 1}, "queue", 3600.0
    )  # fmt: skip
    assert ping.trigger == Every(900.0)
    assert (ping.target, ping.overlap, ping.catch_up) == ("echo@1", "skip", 0.0)
