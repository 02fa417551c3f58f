"""Validation of a step's tool name and tool fields against the tool registry.

A registered tool's fields are checked with its ``fields_schema``. Tools that are planned
but not written yet (``PLANNED_TOOLS``) accept any fields until they register a schema;
any other tool name is an error.
"""

from __future__ import annotations

import threading
from typing import Any

import jsonschema

from kraken.agent.tools.registry import tool_field_schemas
from kraken.stage.errors import StageSchemaError
from kraken.stage.paths import join
from kraken.stage.schema_errors import to_stage_error

# Tools planned but not registered yet: their fields are accepted as they are until they register a schema.
PLANNED_TOOLS = frozenset({"data"})

_lock = threading.Lock()
_validators: dict[str, tuple[dict[str, Any], Any]] = {}


def split_tool(value: str) -> tuple[str, str | None]:
    """``"pytest@1.2"`` → ``("pytest", "1.2")``; ``"git"`` → ``("git", None)``."""
    name, sep, version = value.partition("@")
    return name, (version if sep else None)


def known_tools() -> list[str]:
    return sorted(set(tool_field_schemas()) | PLANNED_TOOLS)


def _validator(tool: str, schema: dict[str, Any]) -> Any:
    with _lock:
        cached = _validators.get(tool)
        if cached is None or cached[0] is not schema:
            cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
            cached = (schema, cls(schema))
            _validators[tool] = cached
        return cached[1]


def check_tool_fields(tool: str, fields: dict[str, Any], step_path: str) -> None:
    """Raise ``StageSchemaError`` if ``tool`` is unknown or ``fields`` do not fit its schema."""
    schemas = tool_field_schemas()
    schema = schemas.get(tool)
    if schema is None:
        if tool in PLANNED_TOOLS:
            return
        raise StageSchemaError(
            f"unknown tool '{tool}'; known tools: {', '.join(known_tools())}", path=join(step_path, "tool")
        )
    error = jsonschema.exceptions.best_match(_validator(tool, schema).iter_errors(fields))
    if error is not None:
        raise to_stage_error(error, step_path)
