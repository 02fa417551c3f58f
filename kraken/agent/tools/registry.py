"""Registry of the tools an agent can run and whose step fields the server validates."""

from __future__ import annotations

from typing import Any, TypeVar

from kraken.agent.tools.base import Tool
from kraken.agent.tools.custom import custom_tool_class

T = TypeVar("T", bound=type[Tool])

_TOOLS: dict[str, type[Tool]] = {}
_loaded = False


def register(cls: T) -> T:
    _TOOLS[cls.name] = cls
    return cls


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        # Importing a tool's module registers it (``@register``). Imported here, not at the top:
        # the tools' modules import this one, and a role that runs no tool never loads them.
        from kraken.agent.tools import (  # noqa: F401
            artifacts,
            cache,
            cloc,
            git,
            gotest,
            junit,
            lint,
            pytest_tool,
            rndtest,
            shell,
            values,
        )


def get_tool(name: str) -> type[Tool]:
    """The built-in tool ``name``, or the custom tool ``name@version`` (``tools/custom.py``)."""
    if "@" in name:
        return custom_tool_class(name)
    _load()
    return _TOOLS[name]


def tool_names() -> list[str]:
    _load()
    return sorted(_TOOLS)


def tool_field_schemas() -> dict[str, dict[str, Any]]:
    _load()
    return {name: cls.fields_schema for name, cls in _TOOLS.items()}
