"""The import pipeline of configs/pipeline.toml, run in-process."""

from __future__ import annotations

import pytest

import tierd
from tests.processes import CONFIGS
from tierd.config import load_config, override_runtime
from tierd.runtime import Runtime
from tierd.testing import wait_until


@pytest.fixture
def pipeline():
    """configs/pipeline.toml with no network, no events and no metrics."""
    config = override_runtime(
        load_config(CONFIGS / "pipeline.toml"), "test", endpoint="", metrics="", events=""
    )
    with Runtime(config) as rt:
        yield rt


def test_an_import_goes_through_every_step_and_is_saved(pipeline):
    """Validate -> collect -> convert -> integrate -> save; duplicates dropped, values converted."""
    receipt = pipeline.request(
        "validate@1",
        {
            "source": "crm",
            "records": [
                {"id": 1, "email": " Ann@Example.org ", "amount": "12.5"},
                {"id": 2, "email": "bob@example.org", "amount": "7", "country": "DE"},
                {"id": 1, "email": "ann@example.org", "amount": "13"},
            ],
        },
        timeout=10,
    )
    assert receipt == {"source": "crm", "saved": 2, "duplicates": 1}
    stored = wait_until(
        lambda: (
            (dump := pipeline.request("store@2", {"op": "dump"}, timeout=5))
            and len(dump) == 2
            and dump
        )
    )
    assert stored == [
        {
            "country": "DE",
            "currency": "EUR",
            "id": 2,
            "email": "bob@example.org",
            "amount": 7,
            "source": "crm",
        },
        {
            "country": "FR",
            "currency": "EUR",
            "id": 1,
            "email": "ann@example.org",
            "amount": 13,
            "source": "crm",
        },
    ]


def test_a_malformed_import_is_refused_by_validation(pipeline):
    """An import without records fails at the first step with RemoteError naming the problem."""
    with pytest.raises(tierd.RemoteError, match="'records' must be a list"):
        pipeline.request("validate@1", {"source": "crm"}, timeout=10)
    assert pipeline.request("store@2", {"op": "count"}, timeout=5) == 0
