"""``#{secrets.NAME}`` references in step and notification fields, their values, and masking.

``#{secrets.NAME}`` is a simple secret's value (an ssh-key secret's key);
``#{secrets.NAME.user}`` and ``#{secrets.NAME.key}`` read an ssh-key secret's parts.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

PATTERN = re.compile(r"#\{\s*secrets\.([A-Za-z_][A-Za-z0-9_-]*)(?:\.(user|key|value))?\s*\}")
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"
MASK = "******"
MIN_MASKED_LENGTH = 3  # shorter values (e.g. "1") would mask half of every log
SSH_KEY_FIELDS = ("ssh-key", "ssh_key")  # git step fields naming an ssh-key secret


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def referenced_names(value: Any) -> set[str]:
    """Names of the secrets ``#{secrets.NAME}`` refers to anywhere in ``value``."""
    return {m.group(1) for text in _strings(value) for m in PATTERN.finditer(text)}


def step_secret_names(tool: str, fields: Mapping[str, Any]) -> set[str]:
    names = referenced_names(fields)
    if tool == "git":
        for key in SSH_KEY_FIELDS:
            if isinstance(fields.get(key), str) and fields[key]:
                names.add(fields[key])
    return names


def secret_text(secret: Mapping[str, Any], part: str | None) -> str:
    """What a reference yields: ``value`` of a simple secret, ``key``/``user`` of an ssh-key."""
    if secret.get("kind") == "ssh-key":
        return str(secret.get("user" if part == "user" else "key") or "")
    return str(secret.get("value") or "")


def substitute(value: Any, secrets: Mapping[str, Mapping[str, Any]]) -> Any:
    """Replace references to known secrets (unknown ones stay as they are)."""
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            secret = secrets.get(m.group(1))
            return secret_text(secret, m.group(2)) if secret is not None else m.group(0)

        return PATTERN.sub(repl, value)
    if isinstance(value, list):
        return [substitute(v, secrets) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, secrets) for k, v in value.items()}
    return value


def secret_values(secret: Mapping[str, Any]) -> list[str]:
    """The strings to hide for one secret (an ssh-key's user name is not secret)."""
    if secret.get("kind") == "ssh-key":
        return [str(secret.get("key") or "")]
    return [str(secret.get("value") or "")]


class Masker:
    """Replaces secret values in text with ``******``."""

    def __init__(self, values: Iterable[str]) -> None:
        wanted: set[str] = set()
        for value in values:
            for v in (value, value.strip()):
                if len(v) >= MIN_MASKED_LENGTH:
                    wanted.add(v)
                    quoted = urllib.parse.quote(v, safe="")
                    if quoted != v:
                        wanted.add(quoted)
            if "\n" in value:  # a key printed line by line
                wanted.update(line.strip() for line in value.splitlines() if len(line.strip()) >= 8)
        self.values = sorted(wanted, key=len, reverse=True)
        self._re = re.compile("|".join(re.escape(v) for v in self.values)) if self.values else None

    def __bool__(self) -> bool:
        return self._re is not None

    def text(self, text: str) -> str:
        return self._re.sub(MASK, text) if self._re is not None else text

    def value(self, value: Any) -> Any:
        if self._re is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        return value
