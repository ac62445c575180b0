"""A topology for the HTTP tests that run ``tierd run``: an Echo, and the test process kinds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.processes import free_port

if TYPE_CHECKING:
    from pathlib import Path


def write_config(
    directory: Path, *, tokens: tuple[tuple[str, str], ...] = (), http: str = ""
) -> Path:
    """Write ``web.toml`` in ``directory``: HTTP on ``http`` (a free port by default)."""
    entries = ", ".join(f'{{ token = "{token}", role = "{role}" }}' for token, role in tokens)
    path = directory / "web.toml"
    path.write_text(
        f"""
[runtime]
name = "web"
endpoint = "tcp://127.0.0.1:{free_port()}"
metrics = ""
http = "{http or f"127.0.0.1:{free_port()}"}"
http_tokens = [{entries}]
data_dir = "{directory}"
sweep_interval = 0.02
grace_period = 1

[[levels]]
level = 1
  [[levels.daemons]]
  id = "echo"
  class = "tierd.actors.builtin:Echo"
  [[levels.daemons]]
  id = "crasher"
  class = "tierd.actors.builtin:Crasher"

[processes]
  [[processes.kinds]]
  kind = "paced"
  class = "tests.web.kinds:Paced"
  [[processes.kinds]]
  kind = "held"
  class = "tests.web.kinds:Held"
  [[processes.kinds]]
  kind = "broken"
  class = "tests.web.kinds:Broken"
  [[processes.kinds]]
  kind = "items"
  class = "tests.web.kinds:Items"

[[schedules]]
name = "nightly-import"
cron = "30 2 * * *"
timezone = "Europe/Paris"
process = "paced"
params = {{ parts = 2, pause = 0.01 }}
""",
        encoding="utf-8",
    )
    return path
