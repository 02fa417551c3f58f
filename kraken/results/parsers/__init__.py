"""Streaming parsers for test reports and linter output (agent side, no server imports)."""

from kraken.results.parsers.base import (
    MESSAGE_MAX_BYTES,
    NAME_MAX_CHARS,
    ParsedResult,
    ReportError,
    bound_message,
    bound_name,
)

__all__ = [
    "MESSAGE_MAX_BYTES",
    "NAME_MAX_CHARS",
    "ParsedResult",
    "ReportError",
    "bound_message",
    "bound_name",
]
