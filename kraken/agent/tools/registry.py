"""Registry of the tools an agent can run and whose step fields the server validates."""

from __future__ import annotations

import importlib
from typing import Any, TypeVar

from kraken.agent.tools.base import Tool
from kraken.agent.tools.custom import custom_tool_class

TOOL_MODULES = [
    "kraken.agent.tools.shell",
    "kraken.agent.tools.git",
    "kraken.agent.tools.pytest_tool",
    "kraken.agent.tools.junit",
    "kraken.agent.tools.gotest",
    "kraken.agent.tools.values",
    "kraken.agent.tools.lint",
    "kraken.agent.tools.artifacts",
    "kraken.agent.tools.cache",
    "kraken.agent.tools.rndtest",
    "kraken.agent.tools.cloc",
]

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
        for module in TOOL_MODULES:
            importlib.import_module(module)


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
