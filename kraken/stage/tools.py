"""Validation of a step's tool name and tool fields against the tool registry.

A registered tool's fields are checked with its ``fields_schema`` (no unknown field passes).
Tools of the original Kraken that this one does not have (``UNAVAILABLE_TOOLS``) and
versioned tools (``name@version``: there are no custom tools yet) are refused with a
message that says so; any other tool name is an unknown tool.
"""

from __future__ import annotations

import threading
from typing import Any

import jsonschema

from kraken.agent.tools.registry import tool_field_schemas
from kraken.stage.errors import StageSchemaError
from kraken.stage.paths import join
from kraken.stage.schema_errors import to_stage_error

# Tools of the original Kraken that are not available here, with what to use instead.
UNAVAILABLE_TOOLS: dict[str, str] = {
    "data": "user data (flow/branch/project data) is not supported yet",
    "nglint": "run 'npx ng lint' with the shell tool instead",
}
PLANNED_TOOLS = frozenset(UNAVAILABLE_TOOLS)

_lock = threading.Lock()
_validators: dict[str, tuple[dict[str, Any], Any]] = {}


def split_tool(value: str) -> tuple[str, str | None]:
    """``"pytest@1.2"`` → ``("pytest", "1.2")``; ``"git"`` → ``("git", None)``."""
    name, sep, version = value.partition("@")
    return name, (version if sep else None)


def known_tools() -> list[str]:
    return sorted(tool_field_schemas())


def check_tool_name(value: str, step_path: str) -> str:
    """The tool's name; ``StageSchemaError`` for a versioned, unavailable or unknown tool."""
    tool, version = split_tool(value)
    path = join(step_path, "tool")
    if version is not None:
        raise StageSchemaError(
            f"'{value}': versioned tools are not available (custom tools are not supported yet); use '{tool}'",
            path=path,
        )
    if tool in UNAVAILABLE_TOOLS:
        raise StageSchemaError(
            f"the tool '{tool}' is not available in this Kraken: {UNAVAILABLE_TOOLS[tool]}", path=path
        )
    return tool


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
    schema = tool_field_schemas().get(tool)
    if schema is None:
        raise StageSchemaError(
            f"unknown tool '{tool}'; known tools: {', '.join(known_tools())}", path=join(step_path, "tool")
        )
    error = jsonschema.exceptions.best_match(_validator(tool, schema).iter_errors(fields))
    if error is not None:
        raise to_stage_error(error, step_path)
