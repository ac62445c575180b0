"""Scraping a metrics endpoint in tests."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

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
