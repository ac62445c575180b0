"""``tierd check``: good configs pass; each kind of bad config gets one line per problem."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.processes import CONFIGS, ROOT
from tierd.cli import main

ECHO = '[[levels]]\nlevel = 1\n[[levels.daemons]]\nid = "a"\nclass = "tierd.actors.builtin:Echo"\n'

BAD = {
    "bad-toml": ("[runtime\nname = 1\n", "not valid TOML"),
    "not-utf8": (b"\xff\xfe[runtime]", "not UTF-8"),
    "unknown-class": (
        '[[levels]]\nlevel = 1\n[[levels.daemons]]\nid = "a"\nclass = "nope.mod:X"\n',
        "levels[0].daemons[0].class: unknown class 'nope.mod:X'",
    ),
    "not-a-daemon": (
        ECHO.replace("tierd.actors.builtin:Echo", "tierd:Runtime"),
        "levels[0].daemons[0].class: unknown class 'tierd:Runtime': no Daemon subclass",
    ),
    "duplicate-daemon": (
        ECHO + ECHO.split("\n", 2)[2],
        "levels[0].daemons: duplicate daemon id 'a'",
    ),
    "duplicate-level": (ECHO + ECHO, "levels[1].level: level 1 is defined twice"),
    "local-and-peer": (
        ECHO + '[[peers]]\nendpoint = "tcp://127.0.0.1:5556"\nlevels = [1]\n',
        "peers[0].levels: level 1 is both local and served by peer tcp://127.0.0.1:5556",
    ),
    "bad-endpoint": (
        '[runtime]\nendpoint = "tcp://nowhere"\n' + ECHO,
        "runtime.endpoint: bad endpoint 'tcp://nowhere'",
    ),
    "bad-peer-endpoint": (
        ECHO + '[[peers]]\nendpoint = "udp://x:1"\nlevels = [2]\n',
        "peers[0].endpoint: bad endpoint 'udp://x:1'",
    ),
    "bad-metrics": ('[runtime]\nmetrics = "9464"\n' + ECHO, "runtime.metrics: bad metrics address"),
    "unknown-key": ('[runtime]\ncolour = "red"\n' + ECHO, "runtime.colour: unknown key"),
    "bad-option": (
        ECHO.replace("Echo", "Relay") + 'options = { to = "nowhere" }\n',
        "levels[0].daemons[0]: options do not fit tierd.actors.builtin:Relay: option 'to'",
    ),
    "unknown-option": (ECHO + "options = { colour = 1 }\n", "options do not fit"),
    "bad-restart": (
        ECHO + "restart = { max_restarts = -1 }\n",
        "levels[0].daemons[0].restart.max_restarts: Input should be greater than or equal to 0",
    ),
    "no-levels": ('[runtime]\nname = "x"\n', "levels: Field required"),
    "wrong-type": ("levels = 3\n", "levels: Input should be a valid list"),
}


@pytest.mark.parametrize("config", sorted(p.name for p in CONFIGS.glob("*.toml")))
def test_every_shipped_config_passes_check(config, capsys):
    """Every file in configs/ passes `tierd check`."""
    assert main(["check", str(CONFIGS / config)]) == 0
    assert capsys.readouterr().out.startswith(f"{CONFIGS / config}: ok: ")


def test_the_default_topology_passes_check(capsys):
    """The topology shipped in the package passes `tierd check`."""
    assert main(["check", str(ROOT / "src" / "tierd" / "default.toml")]) == 0


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_config_gets_one_line_naming_file_and_key(kind, tmp_path, capsys):
    """Each kind of bad config exits 2 with a line naming the file and the key, no traceback."""
    text, expected = BAD[kind]
    path = tmp_path / f"{kind}.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    assert main(["check", str(path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines
    assert all(line.startswith(f"{path}: ") for line in lines)
    assert any(expected in line for line in lines), lines


def test_several_problems_give_one_line_each(tmp_path, capsys):
    """A config with three problems prints three lines."""
    path = tmp_path / "three.toml"
    path.write_text('[runtime]\ncolour = 1\nmetrics = "x"\n' + ECHO.replace("Echo", "Nope"))
    assert main(["check", str(path)]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 3


def test_missing_file_is_one_line(tmp_path, capsys):
    """A config that does not exist is reported in one line."""
    assert main(["check", str(tmp_path / "missing.toml")]) == 2
    assert (
        capsys.readouterr().err
        == f"{tmp_path / 'missing.toml'}: cannot read: No such file or directory\n"
    )


def test_check_as_a_command_prints_no_traceback(tmp_path):
    """The installed command exits 2 with no traceback on a bad file."""
    path = tmp_path / "bad.toml"
    path.write_text("[[levels]]\nlevel = 'one'\n")
    done = subprocess.run(
        [sys.executable, "-m", "tierd.cli", "check", str(path)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"{path}: levels[0]")
