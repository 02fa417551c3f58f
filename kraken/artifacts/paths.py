"""Artifact paths and globs: relative, '/'-separated, never leaving their directory."""

from __future__ import annotations

import posixpath
import re

MAX_PATH = 1000


class UnsafePath(ValueError):
    """A path that is absolute or climbs out of its directory with '..'."""


def clean_relative(path: str, what: str = "path") -> str:
    """``path`` normalized ('a/./b' -> 'a/b'); ``UnsafePath`` when absolute or escaping."""
    if not path or not path.strip():
        raise UnsafePath(f"the {what} is empty")
    if "\x00" in path or "\\" in path:
        raise UnsafePath(f"the {what} {path!r} contains a NUL or a backslash")
    if path.startswith("/"):
        raise UnsafePath(f"the {what} {path!r} is absolute: give a path inside the job's working directory")
    if ".." in path.split("/"):
        raise UnsafePath(f"the {what} {path!r} leaves the job's working directory ('..' is not allowed)")
    norm = posixpath.normpath(path)
    if norm == ".":
        return "."
    if len(norm) > MAX_PATH:
        raise UnsafePath(f"the {what} is longer than {MAX_PATH} characters")
    return norm


def inside(path: str, root: str) -> bool:
    """Whether absolute ``path`` is ``root`` or below it (both normalized, no symlinks resolved)."""
    path, root = posixpath.normpath(path), posixpath.normpath(root)
    return path == root or path.startswith(root.rstrip("/") + "/")


def _part_regex(part: str) -> str:
    out, i = [], 0
    while i < len(part):
        c = part[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = part.find("]", i + 2 if part[i + 1 : i + 2] in ("!", "]") else i + 1)
            if j < 0:
                out.append(re.escape(c))
            else:
                inner = part[i + 1 : j]
                if inner.startswith("!"):
                    inner = "^" + inner[1:]
                out.append("[" + inner.replace("\\", "\\\\") + "]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A regex for a glob over '/'-separated paths: ``*`` and ``?`` stay in one directory,
    ``**`` spans any number of them; a pattern naming a directory matches the files below it."""
    parts = [p for p in pattern.split("/") if p not in ("", ".")]
    rx = ""
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            rx += ".*" if last else "(?:.*/)?"
        else:
            rx += _part_regex(part) + ("" if last else "/")
    return re.compile(rf"(?s:{rx})(?:/.*)?\Z")


def has_magic(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def static_prefix(pattern: str) -> str:
    """The directories of a glob before its first wildcard ('dist/*.whl' -> 'dist')."""
    parts = [p for p in pattern.split("/") if p not in ("", ".")]
    fixed: list[str] = []
    for part in parts[:-1]:
        if has_magic(part):
            break
        fixed.append(part)
    else:
        if parts and not has_magic(parts[-1]):
            return "/".join(parts[:-1]) or "."
    return "/".join(fixed) or "."
