"""Where `tierd run`, `tierd check` and `Runtime.from_config` import daemon classes from."""

from __future__ import annotations

import signal
import sys
from typing import TYPE_CHECKING

import pytest

import tierd
from tests.processes import free_port, run_tierd

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

GREETER = """
import tierd

class Greeter(tierd.Daemon):
    def handle(self, message):
        return {"hello": message.payload}
"""


def write_package(directory: Path, name: str) -> None:
    """A package ``name`` in ``directory`` whose ``mod`` module holds a ``Greeter`` daemon."""
    package = directory / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text(GREETER)


def write_config(path: Path, package: str) -> Path:
    """A one-level topology whose ``greeter`` daemon is ``package.mod:Greeter``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        '[[levels]]\nlevel = 1\n[[levels.daemons]]\nid = "greeter"\n'
        f'class = "{package}.mod:Greeter"\n'
    )
    return path


@pytest.fixture
def clean_import_path() -> Iterator[None]:
    """Put `sys.path` and `sys.modules` back as they were after an in-process import."""
    path, modules = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        del sys.modules[name]


def test_check_imports_a_package_next_to_the_config(tmp_path):
    """`tierd check` finds a package in the config's directory, run from anywhere else."""
    write_package(tmp_path / "project", "nextdoor")
    config = write_config(tmp_path / "project" / "topology.toml", "nextdoor")
    (tmp_path / "elsewhere").mkdir()
    done = run_tierd("check", str(config), cwd=tmp_path / "elsewhere")
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert done.stdout.startswith(f"{config}: ok: 1 level(s), 1 daemon(s)")


def test_check_imports_a_package_in_the_current_directory(tmp_path):
    """`tierd check` finds a package in the current directory, with the config elsewhere."""
    write_package(tmp_path / "work", "herepkg")
    config = write_config(tmp_path / "configs" / "topology.toml", "herepkg")
    done = run_tierd("check", str(config), cwd=tmp_path / "work")
    assert (done.returncode, done.stderr) == (0, ""), done.stderr


def test_app_dir_adds_directories_to_import_from(tmp_path):
    """`--app-dir DIR`, repeatable, adds directories that are neither the config's nor the cwd."""
    write_package(tmp_path / "lib1", "firstpkg")
    write_package(tmp_path / "lib2", "secondpkg")
    config = tmp_path / "configs" / "topology.toml"
    write_config(config, "firstpkg")
    config.write_text(
        config.read_text() + '[[levels.daemons]]\nid = "second"\nclass = "secondpkg.mod:Greeter"\n'
    )
    without = run_tierd("check", str(config), cwd=tmp_path)
    assert without.returncode == 2
    done = run_tierd(
        "check", str(config), "--app-dir", str(tmp_path / "lib1"), "--app-dir", "lib2",
        cwd=tmp_path,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, ""), done.stderr


def test_a_module_not_found_names_the_key_and_where_tierd_looked(tmp_path):
    """A missing package: one line naming the key, the module, the directories added, the fix."""
    config = write_config(tmp_path / "configs" / "topology.toml", "missingpkg")
    (tmp_path / "work").mkdir()
    done = run_tierd("check", str(config), cwd=tmp_path / "work")
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"{config}: levels[0].daemons[0].class: unknown class ")
    assert "no module named 'missingpkg'" in line
    assert f"with {tmp_path / 'configs'}, {tmp_path / 'work'} added" in line
    assert "--app-dir DIR" in line


def test_an_app_dir_that_does_not_exist_is_refused_in_one_line(tmp_path):
    """`--app-dir` naming no directory: one line, exit 2, before the config is read."""
    config = write_config(tmp_path / "topology.toml", "anything")
    done = run_tierd("check", str(config), "--app-dir", str(tmp_path / "nope"))
    assert done.returncode == 2
    assert done.stderr == (
        f"tierd check: argument --app-dir: {tmp_path / 'nope'}: no such directory "
        "(see 'tierd check --help')\n"
    )


@pytest.mark.slow
def test_run_serves_a_daemon_from_a_package_next_to_the_config(tmp_path, tierd_cli):
    """`tierd run` imports the package beside its config and the daemon answers a request."""
    write_package(tmp_path, "runpkg")
    config = write_config(tmp_path / "topology.toml", "runpkg")
    address = f"127.0.0.1:{free_port()}"
    run = tierd_cli("run", str(config), "--endpoint", address, "--metrics", "")
    run.wait_for_line(r"clients and peers: tcp://127\.0\.0\.1:\d+")
    done = run_tierd("request", "greeter@1", '"you"', "--endpoint", address, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, '{"hello": "you"}\n'), done.stderr
    assert run.finish(signal.SIGINT) == 0


def test_runtime_from_config_imports_from_the_config_directory(tmp_path, clean_import_path):
    """`Runtime.from_config` puts the config's directory on sys.path before importing."""
    write_package(tmp_path, "frompkg")
    config = write_config(tmp_path / "topology.toml", "frompkg")
    config.write_text('[runtime]\nendpoint = ""\nmetrics = ""\n' + config.read_text())
    with tierd.Runtime.from_config(config) as runtime:
        assert runtime.request("greeter@1", "py", timeout=5) == {"hello": "py"}
    assert str(tmp_path) in sys.path
