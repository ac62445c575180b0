"""docs/daemons.md: its example package, topology and tests work as written."""

from __future__ import annotations

import re
import sys

import pytest

from tests.processes import ROOT, run_tierd

GUIDE = ROOT / "docs" / "daemons.md"


def blocks(language: str) -> list[str]:
    """The guide's fenced code blocks in ``language``, in order."""
    return re.findall(rf"```{language}\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)


@pytest.fixture
def project(tmp_path):
    """The guide's mypkg/greeter.py and topology.toml, written as the guide says."""
    (module,) = [b for b in blocks("python") if b.startswith("# mypkg/greeter.py")]
    (topology,) = [b for b in blocks("toml") if b.startswith("# topology.toml")]
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "greeter.py").write_text(module)
    (tmp_path / "topology.toml").write_text(topology)
    path, modules = list(sys.path), set(sys.modules)
    yield tmp_path
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        del sys.modules[name]


def test_the_guide_topology_passes_check(project):
    """`tierd check topology.toml` accepts the guide's topology, importing mypkg beside it."""
    done = run_tierd("check", str(project / "topology.toml"), cwd=project)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(": ok: 2 level(s), 3 daemon(s), 0 peer(s)\n")


def test_the_guide_tests_pass(project):
    """Every `test_` function in the guide's testing section passes."""
    sys.path.insert(0, str(project))
    tests = [b for b in blocks("python") if "def test_" in b]
    assert len(tests) == 2
    for source in tests:
        namespace: dict[str, object] = {}
        exec(compile(source, str(GUIDE), "exec"), namespace)  # noqa: S102 - the guide's own code
        for name, function in namespace.items():
            if name.startswith("test_") and callable(function):
                function()
