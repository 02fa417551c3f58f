"""``#{secrets.NAME}`` references in step and notification fields, their values, and masking.

``#{secrets.NAME}`` is a simple secret's value (an ssh-key secret's key);
``#{secrets.NAME.user}`` and ``#{secrets.NAME.key}`` read an ssh-key secret's parts,
``#{secrets.NAME.user}`` and ``#{secrets.NAME.password}`` a user-password secret's.
The original Kraken's names work too: ``#{KK_SECRET_SIMPLE_NAME}`` (a simple secret's value),
``#{KK_SECRET_USER_NAME}`` (an ssh-key or user-password secret's user), ``#{KK_SECRET_KEY_NAME}``
(an ssh-key secret's key) and ``#{KK_SECRET_PASSWORD_NAME}`` (a user-password secret's password).
Which parts each kind has: ``PARTS``; ``part_problem`` says what is wrong with a reference.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

PATTERN = re.compile(
    r"#\{\s*(?:secrets\.(?P<name>[A-Za-z_][A-Za-z0-9_-]*)(?:\.(?P<part>user|key|value|password))?"
    r"|KK_SECRET_(?P<legacy_part>SIMPLE|USER|KEY|PASSWORD)_(?P<legacy_name>[A-Za-z_][A-Za-z0-9_-]*))\s*\}"
)
_LEGACY_PARTS = {"SIMPLE": "value", "USER": "user", "KEY": "key", "PASSWORD": "password"}
# the parts a reference may name, by kind (None: no part, ``#{secrets.NAME}``)
PARTS: dict[str, frozenset[str | None]] = {
    "simple": frozenset({None, "value"}),
    "ssh-key": frozenset({None, "key", "user"}),
    "user-password": frozenset({"user", "password"}),
}
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"
MASK = "******"
MIN_MASKED_LENGTH = 3  # shorter values (e.g. "1") would mask half of every log
SSH_KEY_FIELDS = ("ssh-key", "ssh_key")  # git and shell step fields naming an ssh-key secret
TOKEN_FIELDS = ("access-token",)  # git step fields naming a simple secret (or holding a reference)


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def _ref(m: re.Match[str]) -> tuple[str, str | None]:
    """(secret name, part) of one reference."""
    if m.group("name") is not None:
        return m.group("name"), m.group("part")
    return m.group("legacy_name"), _LEGACY_PARTS[m.group("legacy_part")]


def references(value: Any, path: str = "") -> Iterable[tuple[str, str, str | None]]:
    """``(field path, secret name, part)`` of every reference in ``value`` (paths like ``env.T1``)."""
    if isinstance(value, str):
        for m in PATTERN.finditer(value):
            yield (path, *_ref(m))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from references(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from references(item, f"{path}[{i}]")


def part_problem(kind: str, part: str | None) -> str | None:
    """Why a reference to ``part`` of a secret of ``kind`` cannot be resolved, or None."""
    allowed = PARTS.get(kind, frozenset())
    if part in allowed:
        return None
    named = sorted(p for p in allowed if p is not None)
    what = f"has no part '{part}'" if part is not None else "needs a part"
    return f"is a {kind} secret: it {what} (use {' or '.join('.' + p for p in named)})"


def referenced_names(value: Any) -> set[str]:
    """Names of the secrets referred to (``#{secrets.NAME}``, ``#{KK_SECRET_..._NAME}``) anywhere in ``value``."""
    return {_ref(m)[0] for text in _strings(value) for m in PATTERN.finditer(text)}


def step_secret_names(tool: str, fields: Mapping[str, Any]) -> set[str]:
    names = referenced_names(fields)
    named = SSH_KEY_FIELDS + TOKEN_FIELDS if tool == "git" else SSH_KEY_FIELDS if tool == "shell" else ()
    for key in named:
        value = fields.get(key)
        if isinstance(value, str) and value and not PATTERN.search(value):
            names.add(value)
    return names


def secret_text(secret: Mapping[str, Any], part: str | None) -> str:
    """What a reference yields: ``value`` of a simple secret, ``key``/``user`` of an ssh-key,
    ``user``/``password`` of a user-password secret."""
    kind = secret.get("kind")
    if kind == "ssh-key":
        return str(secret.get("user" if part == "user" else "key") or "")
    if kind == "user-password":
        return str(secret.get("user" if part == "user" else "password") or "")
    return str(secret.get("value") or "")


def substitute(value: Any, secrets: Mapping[str, Mapping[str, Any]]) -> Any:
    """Replace references to known secrets (unknown ones stay as they are)."""
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            name, part = _ref(m)
            secret = secrets.get(name)
            return secret_text(secret, part) if secret is not None else m.group(0)

        return PATTERN.sub(repl, value)
    if isinstance(value, list):
        return [substitute(v, secrets) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, secrets) for k, v in value.items()}
    return value


def secret_values(secret: Mapping[str, Any]) -> list[str]:
    """The strings to hide for one secret (an ssh-key's or user-password's user name is not secret)."""
    if secret.get("kind") == "ssh-key":
        return [str(secret.get("key") or "")]
    if secret.get("kind") == "user-password":
        return [str(secret.get("password") or "")]
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
