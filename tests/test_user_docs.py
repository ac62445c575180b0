"""The user docs: the guides are linked from the README, and no page tells the project's history."""

from __future__ import annotations

import re

import pytest

from tests.processes import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
HISTORY = re.compile(
    r"first design|the issue\b|issue's|this session|the session|\bbranch `|DESIGN's", re.I
)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_a_page_tells_no_internal_history(page):
    """No "first design", issue names, sessions or branches: a reader needs what is, not how."""
    found = [
        f"{page.name}:{number}: {line.strip()}"
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if HISTORY.search(line)
    ]
    assert found == []


def test_the_readme_links_every_guide():
    """Every page in docs/ is linked from the README's Documentation list."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    guides = sorted(page.name for page in (ROOT / "docs").glob("*.md"))
    assert [name for name in guides if f"](docs/{name})" not in readme] == []
