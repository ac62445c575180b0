"""The shape of the package: no import cycles, no class built from several tierd classes."""

from __future__ import annotations

import importlib
import inspect
import pathlib
import pkgutil
import re

import grimp

import tierd


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every module that is part of an import cycle, with one cycle through it."""
    found = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported == "tierd" or module == "tierd":
                continue  # the package re-exports its public names; nothing imports it back
            chain = graph.find_shortest_chain(importer=imported, imported=module)
            if chain:
                found.append([module, *chain])
    return found


def test_no_module_of_tierd_imports_itself_back_through_others():
    """Type-only imports included: every dependency points one way."""
    graph = grimp.build_graph("tierd", include_external_packages=False)
    assert _cycles(graph) == []


def test_no_class_inherits_from_more_than_one_tierd_class():
    """One owner per piece of state: no mixins (STYLE.md)."""
    mixed = []
    for info in pkgutil.walk_packages(tierd.__path__, "tierd."):
        module = importlib.import_module(info.name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__:
                continue
            ours = [base for base in cls.__bases__ if base.__module__.startswith("tierd.")]
            if len(ours) > 1:
                mixed.append(f"{module.__name__}.{name}: {[base.__name__ for base in ours]}")
    assert mixed == []


def test_the_layout_table_of_contributing_names_every_module_and_nothing_else():
    """CONTRIBUTING.md's layout table matches the tree under src/tierd."""
    root = pathlib.Path(tierd.__file__).parent
    table = (root.parents[1] / "CONTRIBUTING.md").read_text()
    named = set(re.findall(r"^\| `(src/tierd/[^`]+\.py)` \|", table, re.MULTILINE))
    modules = {
        f"src/tierd/{path.relative_to(root)}"
        for path in root.rglob("*.py")
        if path.name != "__init__.py" or path.parent == root
    }
    assert sorted(modules - named) == []  # in the tree, missing from the table
    assert sorted(named - modules) == []  # in the table, gone from the tree
