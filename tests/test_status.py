"""The status report: the dead letters kept now, uptime, version and endpoint, and its table."""

from __future__ import annotations

import tierd
from tests.topology import daemon, level
from tierd._status import format_duration, format_status
from tierd.testing import wait_until


def test_status_counts_the_dead_letters_kept_now_not_ever(make_runtime):
    """After a purge the report's `dead_letters_kept` goes down; `dead_letters` counts every one."""
    rt = make_runtime({"levels": [level(1, daemon("crasher", "Crasher"))]})
    first, second = rt.send("crasher@1", 1), rt.send("crasher@1", 2)
    wait_until(lambda: len(rt.dead_letters(1)) == 2)
    assert rt.purge_dead_letters(1, [first]) == 1
    (report,) = rt.status()["levels"]
    assert (report["dead_letters_kept"], report["dead_letters"]) == (1, {"handler_error": 2})
    assert "dead letters 1," in format_status(rt.status())
    assert [letter.message.id for letter in rt.dead_letters(1)] == [second]


def test_status_names_the_version_the_endpoint_and_the_uptime(make_runtime):
    """The report and the table's first line carry tierd's version, the endpoint and the uptime."""
    rt = make_runtime({"levels": [level(1, daemon("echo", "Echo"))]})
    report = rt.status()
    assert (report["version"], report["endpoint"]) == (tierd.__version__, "")
    assert 0 < report["uptime"] < 60
    report["endpoint"], report["uptime"] = "tcp://127.0.0.1:5555", 3725.0
    assert format_status(report).splitlines()[0] == (
        f"runtime tierd (tierd {tierd.__version__}) at tcp://127.0.0.1:5555, up 1h02m"
    )


def test_durations_read_at_a_glance():
    """Seconds, minutes, hours and days, two units at most."""
    assert [format_duration(s) for s in (0, 45.9, 185, 7380, 360_000)] == [
        "0s", "45s", "3m05s", "2h03m", "4d04h",
    ]  # fmt: skip
