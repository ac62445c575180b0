"""docs/configuration.md, generated from the config model: every key, its type, default and meaning.

Run ``python -m tierd._config_reference > docs/configuration.md`` (what
``scripts/gen-config-docs`` does); ``tests/test_config_reference.py`` fails
when the file in docs/ is not what this prints. The text of each key is the
docstring under its field in `tierd.config`; its type and default come from
the field itself, so the reference cannot drift from what `tierd check` accepts.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
import typing
from typing import TYPE_CHECKING, Any, Literal

import annotated_types
import pydantic
from pydantic_core import PydanticUndefined

from .config import Config

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

_INTRO = """\
# Configuration reference

<!-- Generated from the config model (src/tierd/config.py) by scripts/gen-config-docs.
     Do not edit by hand: tests/test_config_reference.py fails when this file is stale. -->

A topology is a TOML file: one `[runtime]` table, one `[[levels]]` table per
level with its `[[levels.daemons]]`, and `[[peers]]` for levels that another
runtime serves. `tierd check FILE` checks one without starting anything;
`tierd run FILE` runs the same checks first. A bad file is refused with one
line per problem, naming the file and the key.

```toml
[runtime]
name = "orders"

[[levels]]
level = 1

  [[levels.daemons]]
  id = "relay"
  class = "tierd.actors.builtin:Relay"
  options = { to = "echo@2" }
  restart = { max_restarts = 10 }

[[levels]]
level = 2

  [[levels.daemons]]
  id = "echo"
  class = "tierd.actors.builtin:Echo"
```

- **Types are strict.** A string where a number or a boolean belongs is an
  error, not a coercion: `level = "2"`, `durable = "yes"` and
  `grace_period = "5"` are refused. An integer is fine where a number is
  expected (`grace_period = 5`).
- **Unknown keys are refused**, so a typo never passes silently.
- **Tables can be inline**: `restart = { max_restarts = 10 }` in a daemon's
  table is the same as a `[levels.daemons.restart]` table under it.
- **`class` is `module:Class`**: the module is imported from `sys.path`, to
  which `tierd run` and `tierd check` first add every `--app-dir DIR`, the
  config file's directory and the current directory (`Runtime.from_config`
  adds the config file's directory). A package next to the config imports
  as it would in your shell.
- **Addresses are checked**: an option a daemon sends to (a Relay's `to`)
  must name a daemon of a local level, or a level a peer serves.
"""


def markdown() -> str:
    """The whole reference, as Markdown."""
    sections = [_INTRO, _section("", Config, many=False)]
    for path, model, many in _tables():
        sections.append(_section(path, model, many=many))
    return "\n".join(sections)


def _tables() -> list[tuple[str, type[pydantic.BaseModel], bool]]:
    """Every table of a config in reading order: (its TOML path, its model, whether an array)."""
    found: list[tuple[str, type[pydantic.BaseModel], bool]] = []

    def visit(prefix: str, model: type[pydantic.BaseModel]) -> None:
        for name, field in model.model_fields.items():
            inner, many = _table_of(field.annotation)
            if inner is not None:
                path = f"{prefix}.{_key(name, field)}".lstrip(".")
                found.append((path, inner, many))
                visit(path, inner)

    visit("", Config)
    return found


def _table_of(annotation: Any) -> tuple[type[pydantic.BaseModel] | None, bool]:
    """The model a field holds, alone or as an array (``list[Model]``, ``Model | None``)."""
    if _is_model(annotation):
        return annotation, False
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin is list and args and _is_model(args[0]):
        return args[0], True
    if origin in {typing.Union, types.UnionType} and len(args) == 1:
        return _table_of(args[0])  # ``X | None``: what X is
    return None, False


def _is_model(value: Any) -> bool:
    return inspect.isclass(value) and issubclass(value, pydantic.BaseModel)


def _section(path: str, model: type[pydantic.BaseModel], *, many: bool) -> str:
    heading = "The top level" if not path else f"`[[{path}]]`" if many else f"`[{path}]`"
    summary, _, _ = inspect.cleandoc(model.__doc__ or "").partition("\n\n")
    lines = [f"## {heading}", "", _markdown(" ".join(summary.split())), ""]
    lines += ["| key | type | default | description |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        key = f"`{_key(name, field)}`"
        if isinstance(field.validation_alias, pydantic.AliasChoices):
            others = [str(c) for c in field.validation_alias.choices if c != name]
            key += "".join(f" (or `{other}`)" for other in others)
        description = _markdown(" ".join((field.description or "").split()))
        lines.append(f"| {key} | {_type(field)} | {_default(field)} | {description} |")
    return "\n".join(lines) + "\n"


def _key(name: str, field: FieldInfo) -> str:
    return field.alias or name


def _type(field: FieldInfo) -> str:
    """``integer, >= 1``: the field's TOML type and its bounds."""
    text = _type_name(field.annotation)
    bounds = _bounds(field.metadata)
    return f"{text}, {bounds}" if bounds else text


def _type_name(annotation: Any) -> str:  # noqa: PLR0911 - one return per kind of type
    inner, many = _table_of(annotation)
    if inner is not None:
        return "array of tables" if many else "table"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return " or ".join(f'`"{value}"`' for value in args)
    if origin is list:
        item = args[0]
        bounds = ""
        if typing.get_origin(item) is typing.Annotated:
            item, *metadata = typing.get_args(item)
            bounds = _bounds([m for info in metadata for m in getattr(info, "metadata", [info])])
        name = _type_name(item)
        return f"array of {name}s" + (f" ({bounds})" if bounds else "")
    if origin is dict:
        return "table"
    if origin in {typing.Union, types.UnionType}:
        present = [arg for arg in args if arg is not type(None)]
        return " or ".join(_type_name(arg) for arg in present)
    if (
        origin is typing.Annotated
    ):  # an optional value with bounds: ``Annotated[float, ...] | None``
        item, *metadata = args
        bounds = _bounds([m for info in metadata for m in getattr(info, "metadata", [info])])
        return f"{_type_name(item)}, {bounds}" if bounds else _type_name(item)
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if annotation in names:
        return names[annotation]
    if annotation is Any:
        return "any value"
    return str(annotation)


def _bounds(metadata: list[Any]) -> str:
    """What a value must also be: ``>= 0, <= 60``, ``not empty``, ``matching `PATTERN```."""
    parts = []
    for item in metadata:
        match item:
            case annotated_types.Ge(ge=bound):
                parts.append(f">= {_number(bound)}")
            case annotated_types.Gt(gt=bound):
                parts.append(f"> {_number(bound)}")
            case annotated_types.Le(le=bound):
                parts.append(f"<= {_number(bound)}")
            case annotated_types.MinLen(min_length=1):
                parts.append("not empty")
            case annotated_types.MinLen(min_length=length):
                parts.append(f"at least {length}")
            case _ if getattr(item, "pattern", None):
                parts.append(f"matching `{item.pattern}`")
    return ", ".join(parts)


def _number(value: Any) -> str:
    """A number as TOML writes it; big integers with ``_`` between thousands: ``100_000``."""
    if isinstance(value, int) and value >= 10_000:
        return f"{value:_}"
    return f"{value}"


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    default = field.default
    if field.default_factory is not None:
        default = field.default_factory()  # type: ignore[call-arg] # factories take no data here
    if default is PydanticUndefined or default is None:
        return "none"
    if isinstance(default, pydantic.BaseModel):
        return "its defaults"
    return f"`{_toml(default)}`"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return _number(value)


def _markdown(text: str) -> str:
    """A docstring's reST-ish text for a Markdown table cell: ``x`` -> `x`, no bare pipes."""
    return re.sub(r"``([^`]+)``", r"`\1`", text).replace("|", "\\|")


def main() -> None:
    """Print the reference to standard output."""
    sys.stdout.write(markdown())


if __name__ == "__main__":
    main()
