"""Parser for JSON files of named numeric values per test (benchmarks, sizes, timings).

Accepted shapes::

    {"test name": {"value name": 1.5, ...}, ...}
    [{"test": "test name", "values": {"value name": 1.5}, "status": "passed"}, ...]
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from kraken.results.parsers.base import ParsedResult, ReportError, bound_name
from kraken.results.statuses import STATUS_CODES


def _values(raw: Any) -> dict[str, float] | None:
    if not isinstance(raw, dict):
        return None
    out: dict[str, float] = {}
    for k, v in raw.items():
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        f = float(v)
        if math.isfinite(f):
            out[str(k)[:200]] = f
    return out or None


def plain_values(raw: Any) -> dict[str, float] | None:
    """The numbers of a flat ``{"name": number}`` object (other entries are left out)."""
    return _values(raw)


def parse_values(data: bytes, path: str) -> tuple[list[ParsedResult], ReportError | None]:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        line = data[: exc.pos].count(b"\n") + 1 if exc.pos is not None else None
        return [], ReportError(path, line, f"malformed JSON: {exc.msg}")
    out: list[ParsedResult] = []
    if isinstance(doc, dict):
        for name, vals in doc.items():
            values = _values(vals)
            if values is not None:
                out.append(ParsedResult(bound_name(str(name)), "passed", None, None, values))
        return out, None
    if isinstance(doc, list):
        for i, item in enumerate(doc):
            if not isinstance(item, dict):
                return out, ReportError(path, None, f"item {i} is not an object")
            name = item.get("test") or item.get("name")
            if not name:
                return out, ReportError(path, None, f"item {i} has no test name")
            status = str(item.get("status") or "passed")
            if status not in STATUS_CODES:
                return out, ReportError(path, None, f"item {i} has an unknown status {status!r}")
            duration = item.get("duration")
            out.append(
                ParsedResult(
                    bound_name(str(name)),
                    status,
                    float(duration) if isinstance(duration, int | float) else None,
                    None,
                    _values(item.get("values")),
                )
            )
        return out, None
    return [], ReportError(path, None, "expected a JSON object or array")
