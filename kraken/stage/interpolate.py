"""``#{name}`` interpolation of run arguments and built-in variables into step fields.

``#{name}`` becomes ``str(values[name])``; a dotted name walks into dicts (``#{config.p1}``,
``#{args.COUNT}``, ``#{env.NAME}``, ``#{flow.seq.own}``).  Secret references
(``#{secrets.NAME}``, ``#{KK_SECRET_SIMPLE_NAME}``, ...) are left as they are: secrets are
resolved later, on their own path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kraken.secrets.refs import PATTERN as SECRET_REFERENCE
from kraken.stage.context import BUILTIN_NAMES, LEGACY_PREFIX
from kraken.stage.errors import StageSchemaError
from kraken.stage.paths import join

PATTERN = re.compile(r"#\{([^{}]*)\}")
_MISSING = object()


def _lookup(name: str, args: Mapping[str, Any]) -> Any:
    if name in args:
        return args[name]
    current: Any = args
    for part in name.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return _MISSING
        current = current[part]
    return current


def _unknown(name: str, text: str, args: Mapping[str, Any], path: str | None) -> StageSchemaError:
    if name.startswith("config.") and not isinstance(args.get("config"), Mapping):
        hint = "this job has no config"
    else:
        known = sorted(key for key in args if key != "config" and key not in BUILTIN_NAMES)
        known = [key for key in known if not key.startswith(LEGACY_PREFIX)]
        hint = "known arguments: " + (", ".join(known) if known else "none")
        builtins = sorted(key for key in args if key in BUILTIN_NAMES or key.startswith(LEGACY_PREFIX))
        if builtins:
            hint += "; built-in: " + ", ".join(builtins)
    return StageSchemaError(f"unknown argument '{name}' in {text!r} ({hint})", path=path)


def _text(text: str, args: Mapping[str, Any], path: str | None) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if SECRET_REFERENCE.fullmatch(match.group(0)):
            return match.group(0)
        value = _lookup(name, args)
        if value is _MISSING:
            raise _unknown(name, text, args, path)
        return str(value)

    return PATTERN.sub(replace, text)


def interpolate_at(value: Any, args: Mapping[str, Any], path: str | None) -> Any:
    """Like ``interpolate``; errors carry ``path`` (extended into lists and dicts)."""
    if isinstance(value, str):
        return _text(value, args, path)
    if isinstance(value, list):
        return [interpolate_at(item, args, join(path or "", i)) for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {key: interpolate_at(item, args, join(path or "", key)) for key, item in value.items()}
    return value


def interpolate(value: Any, args: Mapping[str, Any]) -> Any:
    """Replace ``#{name}`` in every string of ``value`` (recursively in lists and dicts)."""
    return interpolate_at(value, args, None)
