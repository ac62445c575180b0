"""Scraping a metrics endpoint in tests."""

from __future__ import annotations

import contextlib
import subprocess
import urllib.request
from typing import TYPE_CHECKING

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.processes import free_port
from tierd.testing import wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def fetch(address: str) -> str:
    """The exposition text served on ``host:port``."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
        return str(response.read().decode())


def parse(text: str) -> Samples:
    """Every sample of an exposition, keyed by (sample name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(address: str) -> Samples:
    """Fetch and parse the metrics served on ``host:port``."""
    return parse(fetch(address))


def value(samples: Samples, sample: str, /, **labels: str | int) -> float | None:
    """One sample's value, or None if there is no such series."""
    return samples.get((sample, frozenset((k, str(v)) for k, v in labels.items())))


@contextlib.contextmanager
def serve_prometheus(
    binary: str, tmp_path: Path, target: str, interval: str, rule_files: tuple[Path, ...] = ()
) -> Iterator[str]:
    """A Prometheus on a free loopback port scraping ``target``; yields its base URL.

    It scrapes, and evaluates ``rule_files``, every ``interval``; it is stopped by its PID.
    """
    port = free_port()
    config = tmp_path / "prometheus.yml"
    rules = "".join(f"  - {path}\n" for path in rule_files)
    config.write_text(
        f"global:\n  scrape_interval: {interval}\n  evaluation_interval: {interval}\n"
        + (f"rule_files:\n{rules}" if rules else "")
        + f"scrape_configs:\n  - job_name: tierd\n    scrape_interval: {interval}\n"
        f"    static_configs:\n      - targets: ['{target}']\n"
    )
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: process.poll() is not None or _ready(base), timeout=30, interval=0.1)
        if process.poll() is not None:
            pytest.fail(f"prometheus exited: {(tmp_path / 'prometheus.log').read_text()}")
        yield base
    finally:
        process.terminate()  # by its own PID, never by name
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as response:  # noqa: S310 - loopback http
            return bool(response.status == 200)
    except OSError:
        return False
