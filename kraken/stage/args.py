"""Run arguments: the stage parameters' defaults overlaid with the given values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kraken.stage.errors import StageSchemaError
from kraken.stage.paths import join
from kraken.stage.schema_errors import describe

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _convert(value: Any, kind: str) -> Any:
    """``value`` as a ``kind`` parameter's value (strings from forms are parsed); ValueError if not."""
    if kind == "string":
        return value if isinstance(value, str) else str(value)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError
    if isinstance(value, bool):
        raise ValueError
    if kind == "integer":
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            return int(value.strip())
        raise ValueError
    if isinstance(value, (int, float)):  # number
        return value
    if isinstance(value, str):
        number = float(value.strip())
        return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
    raise ValueError


def resolve_args(schema: dict[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults of ``schema["parameters"]`` overlaid with ``given`` (converted to the parameters' types).

    Given values for undeclared names are kept; a parameter with neither a default nor a
    given value is an error.
    """
    args: dict[str, Any] = dict(given)
    for param in schema.get("parameters", []):
        name, kind = param["name"], param.get("type", "string")
        path = join("args", name)
        if name in given:
            try:
                args[name] = _convert(given[name], kind)
            except ValueError:
                raise StageSchemaError(f"expected {kind}, got {describe(given[name])}", path=path) from None
        elif "default" in param:
            args[name] = param["default"]
        else:
            raise StageSchemaError(f"parameter '{name}' has no default and no value was given", path=path)
    return args
