"""Key paths in the user's terms: ``jobs[0].steps[1].cmd``."""

from __future__ import annotations

from collections.abc import Iterable


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def format_path(keys: Iterable[str | int], base: str = "") -> str:
    path = base
    for key in keys:
        path = join(path, key)
    return path
