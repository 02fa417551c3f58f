"""Validation of a step's tool name and tool fields against the tool registry.

A built-in tool's fields are checked with its ``fields_schema`` (no unknown field passes).
A custom tool (``docs/tools.md``) is named ``name`` (its latest version) or ``name@version``;
its fields are checked with the JSON Schema of its manifest, and the normalized step names it
as ``name@version``.  The custom tools come from a snapshot of the registry
(``set_custom_tools``, loaded by ``kraken.tools_registry.store.refresh_snapshot`` before stage
code is checked or evaluated).  Tools of the original Kraken that this one does not have
(``UNAVAILABLE_TOOLS``), a version of a built-in tool, an unknown tool and an unknown version
are refused with a message that says so.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class CustomToolVersion:
    name: str
    version: str
    fields_schema: dict[str, Any]


_lock = threading.Lock()
_validators: dict[str, tuple[dict[str, Any], Any]] = {}
# name -> version -> schema, versions in registration order (the last one is the latest)
_custom: dict[str, dict[str, dict[str, Any]]] = {}


def set_custom_tools(tools: Iterable[CustomToolVersion]) -> None:
    """Replace the snapshot of the registered custom tools (in registration order)."""
    fresh: dict[str, dict[str, dict[str, Any]]] = {}
    for tool in tools:
        fresh.setdefault(tool.name, {})[tool.version] = tool.fields_schema
    global _custom
    _custom = fresh


def split_tool(value: str) -> tuple[str, str | None]:
    """``"pytest@1.2"`` → ``("pytest", "1.2")``; ``"git"`` → ``("git", None)``."""
    name, sep, version = value.partition("@")
    return name, (version if sep else None)


def known_tools() -> list[str]:
    return sorted(set(tool_field_schemas()) | set(_custom))


def check_tool_name(value: str, step_path: str) -> str:
    """The tool as steps store it: a built-in tool's name, or ``name@version`` of a custom tool;
    ``StageSchemaError`` for an unavailable or unknown tool or version."""
    tool, version = split_tool(value)
    path = join(step_path, "tool")
    if tool in UNAVAILABLE_TOOLS:
        raise StageSchemaError(
            f"the tool '{tool}' is not available in this Kraken: {UNAVAILABLE_TOOLS[tool]}", path=path
        )
    if tool in tool_field_schemas():
        if version is not None:
            raise StageSchemaError(f"'{value}': the built-in tool '{tool}' has no versions; use '{tool}'", path=path)
        return tool
    versions = _custom.get(tool)
    if versions is None:
        raise StageSchemaError(f"unknown tool '{tool}'; known tools: {', '.join(known_tools())}", path=path)
    if version is None:
        version = list(versions)[-1]
    elif version not in versions:
        raise StageSchemaError(
            f"the tool '{tool}' has no version '{version}'; registered versions: {', '.join(versions)}", path=path
        )
    return f"{tool}@{version}"


def _schema_of(tool: str) -> dict[str, Any] | None:
    name, version = split_tool(tool)
    if version is None:
        return tool_field_schemas().get(tool)
    return _custom.get(name, {}).get(version)


def _validator(tool: str, schema: dict[str, Any]) -> Any:
    import jsonschema  # on first use: a server that checks no stage never loads it (#13)

    with _lock:
        cached = _validators.get(tool)
        if cached is None or cached[0] is not schema:
            cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
            cached = (schema, cls(schema))
            _validators[tool] = cached
        return cached[1]


def check_tool_fields(tool: str, fields: dict[str, Any], step_path: str) -> None:
    """Raise ``StageSchemaError`` if ``tool`` (as ``check_tool_name`` returns it) is unknown or
    ``fields`` do not fit its schema."""
    schema = _schema_of(tool)
    if schema is None:
        raise StageSchemaError(
            f"unknown tool '{tool}'; known tools: {', '.join(known_tools())}", path=join(step_path, "tool")
        )
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator(tool, schema).iter_errors(fields))
    if error is not None:
        raise to_stage_error(error, step_path)
