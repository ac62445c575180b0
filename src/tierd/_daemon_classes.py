"""Daemon classes named in a config, ``module:Class``, imported along an import path.

Every failure is a `ValueError` with one line a user can act on: a class not
written ``module:Class``, a module not found (naming the directories tierd
put on `sys.path`), a module that raises while imported, a class that is not
a `Daemon`. The config check reports it under the daemon's key.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from .actors.daemon import Daemon

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

_CLASS_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


def address_options(daemon_class: type[Daemon]) -> tuple[str, ...]:
    """The options of ``daemon_class`` that hold an address it sends to (its ``address_options``).

    A daemon class may declare them as a class attribute, a tuple of option
    names; `load_config` then refuses an address that no level serves.
    """
    names = getattr(daemon_class, "address_options", ())
    if not isinstance(names, tuple | list) or not all(isinstance(n, str) for n in names):
        raise ValueError(
            f"{daemon_class.__qualname__}.address_options must be a tuple of option names"
        )
    return tuple(names)


T = TypeVar("T")


def resolve_class(class_path: str, import_path: Sequence[str] = ()) -> type[Daemon]:
    """Import ``module:Class`` and check that it is a `Daemon` (see `import_class`)."""
    return import_class(class_path, Daemon, import_path)


def import_class(class_path: str, base: type[T], import_path: Sequence[str] = ()) -> type[T]:
    """Import ``module:Class`` and check that it is a subclass of ``base``.

    Args:
        class_path: ``module:Class``, e.g. ``"tierd.actors.builtin:Echo"``.
        base: what the class must be: `tierd.Daemon`, `tierd.Process`.
        import_path: the directories put on `sys.path` for this config, named
            in the hint when the module is not found.

    Raises:
        ValueError: it is not written ``module:Class``, its module is not
            found or raises while imported, or it is not a ``base`` subclass.
    """
    if not _CLASS_PATH.match(class_path):
        raise ValueError(_class_path_advice(class_path))
    module_name, _, class_name = class_path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        missing = error.name or module_name
        if module_name == missing or module_name.startswith(f"{missing}."):
            raise ValueError(
                f"unknown class {class_path!r}: cannot import {module_name}: no module named "
                f"{missing!r} on sys.path{_import_hint(import_path)}"
            ) from None
        raise ValueError(  # the module was found, and imports something that is not there
            f"unknown class {class_path!r}: importing {module_name} failed: {one_line(error)}"
        ) from None
    except Exception as error:  # noqa: BLE001 - the user's module raised: one line, no trace
        raise ValueError(
            f"unknown class {class_path!r}: importing {module_name} failed: {one_line(error)}"
        ) from None
    found = getattr(module, class_name, None)
    if not (inspect.isclass(found) and issubclass(found, base)):
        raise ValueError(
            f"unknown class {class_path!r}: "
            f"no {base.__name__} subclass {class_name} in {module_name}"
        )
    return found


def _class_path_advice(class_path: str) -> str:
    """What to write instead of a ``class`` that is not ``module:Class``."""
    text = class_path.strip()
    if ":" not in text and "." in text:
        module, _, name = text.rpartition(".")
        return f"class {class_path!r} is not module:Class: write it as {f'{module}:{name}'!r}"
    return (
        f"class {class_path!r} is not module:Class: write it as the module, a colon and the "
        "class, e.g. 'tierd.actors.builtin:Echo'"
    )


def _import_hint(import_path: Sequence[str]) -> str:
    how = "add its directory with --app-dir DIR (tierd run, tierd check) or PYTHONPATH"
    if not import_path:
        return f"; {how}"
    return f" (with {', '.join(import_path)} added); put the package in one of those, or {how}"


def one_line(error: BaseException) -> str:
    """``Type: text`` of an exception, on one line."""
    return " ".join(f"{type(error).__name__}: {error}".split())


def extend_import_path(directories: Iterable[str | Path]) -> list[str]:
    """Put ``directories`` at the front of `sys.path`, in order, each once.

    Relative directories are made absolute, so that a later change of the
    working directory does not change what imports. A directory already on
    `sys.path` stays where it is.

    Returns:
        The directories as absolute paths, in order, without repeats.
    """
    entries = list(dict.fromkeys(str(Path(directory).resolve()) for directory in directories))
    for entry in reversed(entries):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    importlib.invalidate_caches()
    return entries
