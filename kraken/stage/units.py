"""Parsing of durations (``"10m"``) and memory sizes (``"512m"``) used in stage schemas."""

from __future__ import annotations

import re

_INTERVAL = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*[smhdw]\s*)+$", re.IGNORECASE)
_INTERVAL_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_BYTES = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}

INTERVAL_HINT = "e.g. '90s', '10m', '1h30m', '1d' or a number of seconds"
MEMORY_HINT = "e.g. '512m', '2g' or a number of bytes"


def parse_interval(value: object) -> float:
    """Seconds of an interval given as a positive number of seconds or a string like ``"1h30m"``."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an interval")
    if isinstance(value, (int, float)):
        if value <= 0:
            raise ValueError(f"{value!r} is not a positive number of seconds")
        return float(value)
    if isinstance(value, str) and _INTERVAL.match(value):
        seconds = sum(float(num) * _SECONDS[unit.lower()] for num, unit in _INTERVAL_PART.findall(value))
        if seconds > 0:
            return seconds
    raise ValueError(f"{value!r} is not an interval")


def parse_memory(value: object) -> int:
    """Bytes of a memory size: a positive int (bytes) or a string like ``"512m"``, ``"2GiB"``."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a memory size")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"{value!r} is not a positive number of bytes")
        return value
    if isinstance(value, str):
        match = _MEMORY.match(value)
        if match:
            size = int(float(match.group(1)) * _BYTES[match.group(2).lower()])
            if size > 0:
                return size
    raise ValueError(f"{value!r} is not a memory size")
