from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.process import kinds
from tests.process.manual import Harness

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    """Make `Harness`es (runner, SQLite store, manual executor, fake clock); closed after."""
    made: list[Harness] = []
    kinds.CALLS.clear()
    kinds.HOOKS.clear()

    def make(*classes: Any, **options: Any) -> Harness:
        made.append(Harness(tmp_path, *classes, **options))
        return made[-1]

    yield make
    for one in made:
        one.close()
    kinds.CALLS.clear()
    kinds.HOOKS.clear()
