"""A custom tool's manifest: ``kraken-tool.json`` at the root of its folder.

Shared by the server (registration) and the agent (running the entry point), so it uses the
standard library and jsonschema only.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass
from typing import Any

MANIFEST = "kraken-tool.json"
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
KEYS = {"name", "version", "description", "fields_schema", "entry"}


class ManifestError(ValueError):
    """The manifest is missing or says something that cannot be used."""


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    description: str
    fields_schema: dict[str, Any]
    entry: str  # a file of the package, relative to its root


def parse_manifest(raw: bytes) -> Manifest:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{MANIFEST} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{MANIFEST} must hold a JSON object")
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise ManifestError(f"{MANIFEST}: unknown keys {unknown}; allowed: {sorted(KEYS)}")
    for key in ("name", "version", "entry"):
        if not isinstance(data.get(key), str):
            raise ManifestError(f"{MANIFEST}: '{key}' must be a string")
    name, version, entry = data["name"], data["version"], data["entry"]
    if not NAME_RE.match(name):
        raise ManifestError(f"{MANIFEST}: 'name' {name!r} must match {NAME_RE.pattern}")
    if not VERSION_RE.match(version):
        raise ManifestError(f"{MANIFEST}: 'version' {version!r} must match {VERSION_RE.pattern}")
    norm = posixpath.normpath(entry) if entry else ""
    if not entry or entry.startswith("/") or norm.startswith("..") or norm == "." or "\\" in entry:
        raise ManifestError(f"{MANIFEST}: 'entry' {entry!r} must name a file inside the tool's folder")
    description = data.get("description", "")
    if not isinstance(description, str) or len(description) > 2000:
        raise ManifestError(f"{MANIFEST}: 'description' must be a string of at most 2000 characters")
    schema = data.get("fields_schema", {"type": "object"})
    if not isinstance(schema, dict):
        raise ManifestError(f"{MANIFEST}: 'fields_schema' must be a JSON Schema object")
    import jsonschema  # on first use: a server that reads no tool package never loads it (#13)

    try:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        cls.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        raise ManifestError(f"{MANIFEST}: 'fields_schema' is not a valid JSON Schema: {exc.message}") from None
    return Manifest(name=name, version=version, description=description, fields_schema=schema, entry=norm)
