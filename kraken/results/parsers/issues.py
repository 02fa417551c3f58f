"""Parsers for linter findings: ruff (``--output-format json``) and pylint (``--output-format=json``)."""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from kraken.results.parsers.base import bound_message


class ParsedIssue(NamedTuple):
    path: str
    line: int
    column: int
    symbol: str
    message: str
    type: str  # error, warning, convention, refactor, info

    def wire(self) -> list[Any]:
        return [self.path, self.line, self.column, self.symbol, self.message, self.type]


class IssuesParseError(Exception):
    pass


def _relative(path: str, base: str | None) -> str:
    if base:
        prefix = base.rstrip("/") + "/"
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path


# ruff rule-code prefixes, most specific first
_RUFF_TYPES = (
    ("E9", "error"),
    ("F", "error"),
    ("PLE", "error"),
    ("PLW", "warning"),
    ("PLR", "refactor"),
    ("PLC", "convention"),
    ("W", "warning"),
    ("B", "warning"),
    ("S", "warning"),
    ("ASYNC", "warning"),
    ("E", "convention"),
    ("N", "convention"),
    ("D", "convention"),
    ("I", "convention"),
    ("C", "refactor"),
    ("SIM", "refactor"),
    ("UP", "refactor"),
    ("RUF", "warning"),
)


def ruff_type(code: str | None) -> str:
    if not code:
        return "error"  # syntax errors have no code
    for prefix, kind in _RUFF_TYPES:
        if code.startswith(prefix):
            return kind
    return "warning"


def _load(data: bytes, tool: str) -> list[Any]:
    if not data.strip():
        return []
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise IssuesParseError(f"{tool} output is not JSON: {exc.msg}") from None
    if not isinstance(doc, list):
        raise IssuesParseError(f"{tool} output is not a JSON array")
    return doc


def parse_ruff(data: bytes, base: str | None = None) -> list[ParsedIssue]:
    out: list[ParsedIssue] = []
    for item in _load(data, "ruff"):
        loc = item.get("location") or {}
        code = item.get("code")
        out.append(
            ParsedIssue(
                _relative(str(item.get("filename") or ""), base),
                int(loc.get("row") or 0),
                int(loc.get("column") or 0),
                str(code or "syntax-error"),
                bound_message(str(item.get("message") or "")) or "",
                ruff_type(code),
            )
        )
    return out


_PYLINT_TYPES = {
    "fatal": "error",
    "error": "error",
    "warning": "warning",
    "convention": "convention",
    "refactor": "refactor",
    "info": "info",
}


def parse_pylint(data: bytes, base: str | None = None) -> list[ParsedIssue]:
    out: list[ParsedIssue] = []
    for item in _load(data, "pylint"):
        out.append(
            ParsedIssue(
                _relative(str(item.get("path") or ""), base),
                int(item.get("line") or 0),
                int(item.get("column") or 0),
                str(item.get("symbol") or item.get("message-id") or "unknown"),
                bound_message(str(item.get("message") or "")) or "",
                _PYLINT_TYPES.get(str(item.get("type")), "warning"),
            )
        )
    return out
