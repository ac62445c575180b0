"""Configs: good ones load, bad ones are refused naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

import tierd
from tierd.config import load_config

CONFIGS = Path(__file__).parent.parent / "configs"

GOOD = """
[[levels]]
level = 1
  [[levels.daemons]]
  id = "echo"
  class = "tierd.actors.builtin:Echo"
"""


ONE_LEVEL = (
    "[[levels]]\nlevel = 1\n"
    + '  [[levels.daemons]]\n  id = "e"\n  class = "tierd.actors.builtin:Echo"\n'
)
PEER_ON_LEVEL_1 = "[[peers]]\nendpoint = 'tcp://127.0.0.1:6000'\nlevels = [1]\n"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "topology.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_configs_are_valid(path):
    """Every config in configs/ loads."""
    assert load_config(path).levels


def test_defaults_fill_everything_but_level_id_and_class(tmp_path):
    """A minimal config gets the documented defaults."""
    config = load_config(_write(tmp_path, GOOD))
    assert config.runtime.endpoint == "tcp://127.0.0.1:5555"
    assert config.runtime.sweep_interval == 0.1
    daemon = config.levels[0].daemons[0]
    assert (daemon.prefetch, daemon.instances, daemon.restart.max_restarts) == (1, 1, 5)


def _daemon(extra: str = "", *, daemon_id: str = "echo", cls: str = "builtin:Echo") -> str:
    if cls.startswith("builtin:"):
        cls = "tierd.actors." + cls
    return f'  [[levels.daemons]]\n  id = "{daemon_id}"\n  class = "{cls}"\n{extra}'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[levels]\nlevel = 1", "not valid TOML"),
        ("[runtime]\nname = 'x'", "levels: Field required"),
        ("[[levels]]\nlevel = 1\n" + _daemon(cls="nowhere.module:Echo"),
         "levels[0].daemons[0].class: unknown class 'nowhere.module:Echo'"),
        ("[[levels]]\nlevel = 1\n" + _daemon(cls="tierd.actors.builtin:Nope"),
         "levels[0].daemons[0].class: unknown class"),
        ("[[levels]]\nlevel = 1\n" + _daemon() + _daemon(),
         "levels[0].daemons: duplicate daemon id 'echo'"),
        ("[[levels]]\nlevel = 1\n" + _daemon() + "[[levels]]\nlevel = 1\n" + _daemon(),
         "level 1 is defined twice"),
        ("[[levels]]\nlevel = 1\n" + _daemon() + PEER_ON_LEVEL_1,
         "level 1 is both local and served by peer"),
        ("[runtime]\nendpoint = 'tcp://nowhere'\n" + ONE_LEVEL,
         "runtime.endpoint: bad endpoint 'tcp://nowhere'"),
        ("[runtime]\nsweep_intervall = 1\n[[levels]]\nlevel = 1\n" + _daemon(),
         "runtime.sweep_intervall: unknown key"),
        ("[[levels]]\nlevel = 0\n" + _daemon(), "levels[0].level: Input should be greater than"),
        ("[[levels]]\nlevel = 1\n" + _daemon("  prefetch = 0\n"), "levels[0].daemons[0].prefetch"),
        ("[[levels]]\nlevel = 1\n" + _daemon("  instances = 0\n"),
         "levels[0].daemons[0].instances"),
        ("[[levels]]\nlevel = 1\n" + _daemon("  instances = 65\n"),
         "levels[0].daemons[0].instances: Input should be less than or equal to 64"),
        ("[[levels]]\nlevel = 1\n" + _daemon("  instances = '4'\n"),
         "levels[0].daemons[0].instances"),
        ("[[levels]]\nlevel = 1\n" + _daemon("  options = { to = 'x' }\n", cls="builtin:Relay"),
         "levels[0].daemons[0]: options do not fit tierd.actors.builtin:Relay: option 'to'"),
        ("[[levels]]\nlevel = 1\n" + _daemon("  options = { colour = 'red' }\n"),
         "options do not fit tierd.actors.builtin:Echo"),
        ("[[levels]]\nlevel = 1\n" + _daemon(daemon_id="a@b"), "levels[0].daemons[0].id"),
    ],
)  # fmt: skip
def test_bad_configs_name_file_and_key(tmp_path, text, expected):
    """Each kind of mistake is refused with a line naming the file, the key and the problem."""
    path = _write(tmp_path, text)
    with pytest.raises(tierd.ConfigError) as caught:
        load_config(path)
    assert any(expected in line for line in caught.value.problems), caught.value.problems
    assert all(line.startswith(f"{path}: ") for line in caught.value.problems)


def test_missing_file_is_a_config_error(tmp_path):
    """A config that does not exist is a ConfigError, not an OSError traceback."""
    with pytest.raises(tierd.ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
