"""`tierd check` and `tierd run` on a user's broken code: one line naming the key, no traceback."""

from __future__ import annotations

import pytest

from tests.processes import run_tierd

ECHO = (
    '[[levels]]\nlevel = 1\n[[levels.daemons]]\nid = "echo"\nclass = "tierd.actors.builtin:Echo"\n'
)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def broken(:\n    pass\n", "SyntaxError: invalid syntax (broken.py, line 1)"),
        ("raise RuntimeError('no database configured')\n", "RuntimeError: no database configured"),
        ("import not_installed_anywhere\n", "ModuleNotFoundError: No module named 'not_installed"),
    ],
    ids=["syntax-error", "raises", "imports-missing"],
)
@pytest.mark.parametrize("command", ["check", "run"])
def test_a_user_module_that_fails_to_import_is_one_line_naming_the_key(
    tmp_path, source, expected, command
):
    """A SyntaxError or any exception in a user module: one line naming the key, exit 2."""
    (tmp_path / "broken.py").write_text(source)
    config = tmp_path / "topology.toml"
    config.write_text(ECHO + '[[levels.daemons]]\nid = "b"\nclass = "broken:B"\n')
    options = ["--metrics", "", "--endpoint", ""] if command == "run" else []
    done = run_tierd(command, str(config), *options)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(
        f"{config}: levels[0].daemons[1].class: unknown class 'broken:B': "
        f"importing broken failed: {expected}"
    )


def test_run_names_the_daemon_whose_constructor_raises(tmp_path):
    """`tierd run`: a constructor that raises is one line naming the daemon's key and address."""
    config = tmp_path / "topology.toml"
    config.write_text(
        ECHO + '[[levels]]\nlevel = 2\n[[levels.daemons]]\nid = "ok"\n'
        'class = "tierd.actors.builtin:Echo"\n[[levels.daemons]]\nid = "bad"\n'
        'class = "tests.daemons:FailingConstructor"\n'
    )
    done = run_tierd("run", str(config), "--metrics", "", "--endpoint", "")
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        f"{config}: levels[1].daemons[1] (bad@2): cannot start: "
        "RuntimeError: constructor fails on purpose"
    )
    assert "Traceback" not in done.stderr


def test_run_names_the_daemon_whose_constructor_raises_an_os_error(tmp_path):
    """A constructor's OSError (a file it cannot open) still names the daemon, in one line."""
    (tmp_path / "opener.py").write_text(
        "import tierd\n\n"
        "class Opener(tierd.Daemon):\n"
        "    def __init__(self, path: str) -> None:\n"
        "        self.file = open(path)  # noqa: SIM115\n\n"
        "    def handle(self, message):\n"
        "        return None\n"
    )
    config = tmp_path / "topology.toml"
    config.write_text(
        ECHO + '[[levels.daemons]]\nid = "opener"\nclass = "opener:Opener"\n'
        f'options = {{ path = "{tmp_path / "missing.txt"}" }}\n'
    )
    done = run_tierd("run", str(config), "--metrics", "", "--endpoint", "")
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        f"{config}: levels[0].daemons[1] (opener@1): cannot start: FileNotFoundError: "
        f"[Errno 2] No such file or directory: '{tmp_path / 'missing.txt'}'"
    )
