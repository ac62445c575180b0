"""The shipped alerting rules: promtool accepts and unit-tests them; they query real metrics.

``deploy/prometheus/tierd-rules.yml`` holds the rules of DESIGN §14 and
``tierd-rules.test.yml`` their ``promtool test rules`` unit tests, each alert
firing on synthetic series and resolving. The slow tests run Debian's
promtool and prometheus (``scripts/install-prometheus``), the last one on a
live runtime; the others check, against a real runtime's exposition, that
every metric and label the rules use is exported.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest

import tierd
from tests.metrics_helpers import parse, serve_prometheus
from tests.process.test_runtime import config
from tests.processes import ROOT, free_port
from tests.topology import daemon, level
from tierd.testing import wait_until

if TYPE_CHECKING:
    from pathlib import Path

DEPLOY = ROOT / "deploy" / "prometheus"
RULES = DEPLOY / "tierd-rules.yml"
RULE_TESTS = DEPLOY / "tierd-rules.test.yml"
ALERTS = (
    "TierdProcessFailureRateHigh",
    "TierdProcessSuccessRateLow",
    "TierdProcessBacklogHigh",
    "TierdProcessStepSlow",
    "TierdProcessesRecovered",
    "TierdDaemonGivenUp",
    "TierdPeerDown",
    "TierdDeadLettersGrowing",
    "TierdQueueNearLimit",
)
TARGET_LABELS = {"job", "instance"}
"""Labels Prometheus gives every scraped series; tierd's own never use these names."""
PROMQL_WORDS = {"by", "on", "without", "ignoring", "group_left", "group_right", "bool"}


def rules() -> list[dict[str, str]]:
    """Each alerting rule's ``alert``, ``expr``, ``severity`` and annotation text.

    A small reader of the file's own layout (a ``- alert:`` item per rule, the
    ``expr`` on one line or as a ``|`` block), since tierd does not depend on
    a YAML library; `test_rule_reader_sees_every_rule` keeps it honest.
    """
    found: list[dict[str, str]] = []
    lines = RULES.read_text().splitlines()
    for number, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("- alert:"):
            found.append({"alert": stripped.removeprefix("- alert:").strip(), "text": ""})
        elif found and stripped.startswith("expr:"):
            expr = stripped.removeprefix("expr:").strip()
            if expr == "|":
                indent = len(line) - len(line.lstrip())
                block = []
                for following in lines[number + 1 :]:
                    if following.strip() and len(following) - len(following.lstrip()) <= indent:
                        break
                    block.append(following.strip())
                expr = " ".join(part for part in block if part)
            found[-1]["expr"] = expr
        elif found and stripped.startswith("severity:"):
            found[-1]["severity"] = stripped.removeprefix("severity:").strip()
        if found:
            found[-1]["text"] += line + "\n"
    return found


def exported_series(make_runtime, tmp_path: Path) -> dict[str, set[str]]:
    """Each sample name a runtime exports, with its label names.

    The runtime has a peer (down: nothing listens there) for ``tierd_peer_up``
    and a process kind that ran one process, so that every family has series.
    """
    topology = config(tmp_path, {"kind": "greet", "class": "tests.process.kinds:Greet"})
    topology["runtime"]["endpoint"] = f"tcp://127.0.0.1:{free_port()}"
    topology["peers"] = [{"endpoint": f"tcp://127.0.0.1:{free_port()}", "levels": [9]}]
    rt = make_runtime(topology)
    rt.processes.wait(rt.processes.submit("greet", "ann"), timeout=10)
    series: dict[str, set[str]] = {}
    for name, labels in parse(rt.metrics.exposition().decode()):
        series.setdefault(name, set()).update(label for label, _value in labels)
    return series


def test_rule_reader_sees_every_rule():
    """Every alert of DESIGN §14 is there, once, with an expression and a severity."""
    found = rules()
    assert [rule["alert"] for rule in found] == list(ALERTS)
    for rule in found:
        assert rule.get("expr"), rule["alert"]
        assert rule.get("severity") in {"critical", "warning", "info"}, rule["alert"]
        assert "summary:" in rule["text"], rule["alert"]
        assert "description:" in rule["text"], rule["alert"]


def test_every_alert_has_a_unit_test_that_it_fires_and_resolves():
    """Each alert is expected firing at one eval time and silent at a later one."""
    text = RULE_TESTS.read_text()
    for alert in ALERTS:
        evals = re.findall(
            rf"- eval_time: (\d+)m\n\s+alertname: {alert}\n\s+exp_alerts:( \[\])?", text
        )
        firing = [int(time) for time, empty in evals if not empty]
        silent = [int(time) for time, empty in evals if empty]
        assert firing, f"{alert} is never expected to fire"
        assert silent, f"{alert} is never expected to be silent"
        assert max(silent) > min(firing), f"{alert} is never expected to resolve"


def test_rules_use_only_exported_metrics_and_their_labels(make_runtime, tmp_path):
    """Every tierd_ metric a rule queries is exported, with every label the rule names."""
    exported = exported_series(make_runtime, tmp_path)
    for rule in rules():
        expr, alert = rule["expr"], rule["alert"]
        names = set(re.findall(r"\btierd_[a-z_]+", expr))
        assert names, alert
        assert names <= exported.keys(), (alert, sorted(names - exported.keys()))
        available = set().union(*(exported[name] for name in names)) | TARGET_LABELS
        for name, matchers in re.findall(r"\b(tierd_[a-z_]+)\{([^}]*)\}", expr):
            used = set(re.findall(r"(\w+)\s*[=!]~?", matchers))
            assert used <= exported[name], (alert, name, sorted(used - exported[name]))
        for group in re.findall(r"\b(?:by|on|without|ignoring)\s*\(([^)]*)\)", expr):
            used = {label.strip() for label in group.split(",")} - PROMQL_WORDS
            assert used <= available, (alert, sorted(used - available))
        templated = set(re.findall(r"\$labels\.(\w+)", rule["text"]))
        assert templated <= available, (alert, sorted(templated - available))


@pytest.mark.slow
def test_promtool_checks_the_rules_and_the_example_config(prometheus_bin):
    """`promtool check rules` and `promtool check config` find nothing wrong."""
    promtool = prometheus_bin[1]
    done = subprocess.run(
        [promtool, "check", "rules", str(RULES)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in done.stdout
    done = subprocess.run(
        [promtool, "check", "config", str(DEPLOY / "prometheus.yml")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_promtool_unit_tests_prove_each_alert_fires_and_resolves(prometheus_bin):
    """`promtool test rules` passes every unit test of tierd-rules.test.yml."""
    done = subprocess.run(
        [prometheus_bin[1], "test", "rules", str(RULE_TESTS)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def _api(base: str, path: str) -> Any:
    with urllib.request.urlopen(f"{base}/api/v1/{path}", timeout=5) as response:  # noqa: S310 - loopback http
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


def _alerts(base: str) -> dict[str, list[dict[str, Any]]]:
    """The alerts Prometheus holds now, pending or firing, by name."""
    found: dict[str, list[dict[str, Any]]] = {}
    for alert in _api(base, "alerts")["alerts"]:
        found.setdefault(alert["labels"]["alertname"], []).append(alert)
    return found


@pytest.mark.slow
def test_a_real_prometheus_evaluates_the_rules_on_a_real_runtime(
    prometheus_bin, make_runtime, tmp_path
):
    """A Prometheus scraping a runtime evaluates every rule cleanly, and its alerts follow it.

    A given-up daemon fires TierdDaemonGivenUp, `restart` resolves it; a peer that is
    not there makes TierdPeerDown pending (it fires after its minute).
    """
    dead_peer = f"tcp://127.0.0.1:{free_port()}"
    rt = make_runtime(
        {
            "runtime": {"endpoint": f"tcp://127.0.0.1:{free_port()}", "metrics": "127.0.0.1:0"},
            "levels": [
                level(1, daemon("echo", "Echo")),
                level(2, daemon("fragile", "Fragile", supervision={"stop": ["ValueError"]})),
            ],
            "peers": [{"endpoint": dead_peer, "levels": [9]}],
        }
    )
    with serve_prometheus(
        prometheus_bin[0], tmp_path, rt.metrics.address, "500ms", (RULES,)
    ) as base:
        wait_until(lambda: _rules_evaluated(base), timeout=30, interval=0.2)
        for group in _api(base, "rules")["groups"]:
            for rule in group["rules"]:
                assert (rule["name"], rule["health"]) == (rule["name"], "ok"), rule
        with pytest.raises(tierd.RemoteError):
            rt.request("fragile@2", "crash", timeout=5)
        both = {"TierdDaemonGivenUp", "TierdPeerDown"}
        wait_until(lambda: both <= _alerts(base).keys(), timeout=30, interval=0.2)
        alerts = _alerts(base)
        (given_up,) = alerts["TierdDaemonGivenUp"]
        assert given_up["state"] == "firing"
        assert given_up["labels"] == {
            "alertname": "TierdDaemonGivenUp", "severity": "critical", "job": "tierd",
            "instance": rt.metrics.address, "level": "2", "daemon": "fragile",
        }  # fmt: skip
        assert "tierd restart fragile@2" in given_up["annotations"]["description"]
        (peer_down,) = alerts["TierdPeerDown"]
        assert (peer_down["state"], peer_down["labels"]["peer"]) == ("pending", dead_peer)
        assert set(alerts) == both
        assert rt.restart("fragile@2")
        wait_until(lambda: "TierdDaemonGivenUp" not in _alerts(base), timeout=30, interval=0.2)


def _rules_evaluated(base: str) -> bool:
    """Whether every rule has been evaluated at least once, on at least one scrape."""
    up = _api(base, "query?query=up")["result"]
    rules = [rule for group in _api(base, "rules")["groups"] for rule in group["rules"]]
    evaluated = all(rule.get("lastEvaluation", "").startswith("2") for rule in rules)
    return bool(up) and evaluated and len(rules) == len(ALERTS)
