"""docs/configuration.md is generated from the config model, and is not stale."""

from __future__ import annotations

import subprocess
import sys

from tests.processes import ROOT
from tierd import config
from tierd._config_reference import _tables, markdown

REFERENCE = ROOT / "docs" / "configuration.md"


def test_the_reference_in_docs_is_what_the_model_generates():
    """docs/configuration.md is exactly what scripts/gen-config-docs writes today."""
    assert REFERENCE.read_text(encoding="utf-8") == markdown(), (
        "docs/configuration.md is stale: run scripts/gen-config-docs"
    )


def test_every_key_of_every_table_has_a_row_with_a_description():
    """Each field of each config model is a row of its table, and has a docstring to show."""
    text = markdown()
    models = [config.Config, *(model for _, model, _ in _tables())]
    assert {m.__name__ for m in models} == {
        "Config", "RuntimeConfig", "LevelConfig", "DaemonConfig", "RestartConfig",
        "SupervisionConfig", "RetryConfig", "PeerConfig", "ProcessesConfig", "RetentionConfig",
        "ProcessKindConfig", "StepConfig", "BatchConfig", "ScheduleConfig", "HttpToken",
    }  # fmt: skip
    for model in models:
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no docstring"
            assert f"| `{field.alias or name}`" in text, name


def test_the_generator_runs_as_a_module():
    """`python -m tierd._config_reference` prints the reference (what the script writes)."""
    done = subprocess.run(
        [sys.executable, "-m", "tierd._config_reference"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert done.stdout == markdown()
