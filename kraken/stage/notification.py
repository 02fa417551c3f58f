"""A stage's ``notification``: today's grouped form, and the original Kraken's flat form.

Grouped: ``{"started" | "completed" | "changes": {"scope": "run" | "flow", CHANNEL: settings}}``.
Flat (the original's): ``{"slack": {...}, "email": ..., "github": {...}, "discord": {...}}``: the
original told every channel at each run's end and set GitHub's commit status at its start too,
so it becomes ``{"completed": {...all...}, "started": {"github": ...}}``.  The two forms cannot
be mixed.  A channel Kraken does not implement is refused, naming the key.
"""

from __future__ import annotations

import functools
from typing import Any

from kraken.notify.channels import CHANNELS
from kraken.stage.errors import StageSchemaError
from kraken.stage.paths import join
from kraken.stage.schema_errors import describe, to_stage_error

EVENTS = ("started", "completed", "changes")
SCOPES = ("run", "flow")
# The original's channels that Kraken does not implement.
NOT_IMPLEMENTED = ("teams", "msteams", "mattermost", "telegram", "irc", "rocketchat")

_TEXT: dict[str, Any] = {"type": "string", "minLength": 1}
_TEXTS: dict[str, Any] = {"oneOf": [_TEXT, {"type": "array", "items": _TEXT, "minItems": 1}]}


def _settings(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": properties}


# What each channel's settings may hold (see kraken.notify.channels).
CHANNEL_SCHEMAS: dict[str, dict[str, Any]] = {
    "email": {"oneOf": [_TEXTS, _settings(to=_TEXTS, subject=_TEXT)]},
    "slack": _settings(channel=_TEXT, webhook=_TEXT, url=_TEXT),
    "discord": {"oneOf": [_TEXT, _settings(webhook=_TEXT, url=_TEXT)]},
    "webhook": {
        "oneOf": [_TEXT, _settings(url=_TEXT, headers={"type": "object", "additionalProperties": {"type": "string"}})]
    },
    "github": _settings(token=_TEXT, credentials=_TEXT, repo=_TEXT, context=_TEXT, api_url=_TEXT, commit=_TEXT),
}


@functools.cache
def _validators() -> dict[str, Any]:
    """Built on first use: jsonschema is loaded only by a process that checks a stage (#13)."""
    import jsonschema

    return {name: jsonschema.Draft202012Validator(schema) for name, schema in CHANNEL_SCHEMAS.items()}


def _channel(name: str, value: Any, path: str) -> None:
    if name not in CHANNELS:
        if name in NOT_IMPLEMENTED:
            raise StageSchemaError(
                f"the notification channel '{name}' is not implemented (channels: {', '.join(CHANNELS)})", path=path
            )
        raise StageSchemaError(f"unknown notification channel '{name}' (channels: {', '.join(CHANNELS)})", path=path)
    import jsonschema

    validator = _validators().get(name)
    error = jsonschema.exceptions.best_match(validator.iter_errors(value)) if validator else None
    if error is not None:
        raise to_stage_error(error, path)


def _group(group: Any, path: str) -> dict[str, Any]:
    if not isinstance(group, dict):
        raise StageSchemaError(f"expected dict, got {describe(group)}", path=path)
    for key, value in group.items():
        if key == "scope":
            if value not in SCOPES:
                raise StageSchemaError(f"{value!r} is not one of {list(SCOPES)}", path=join(path, key))
            continue
        _channel(key, value, join(path, key))
    return dict(group)


def normalize_notification(value: dict[str, Any]) -> dict[str, Any]:
    """The grouped form of ``value``; ``StageSchemaError`` naming the key path when it is wrong."""
    path = "notification"
    events = [key for key in value if key in EVENTS]
    flat = [key for key in value if key not in EVENTS]
    if events and flat:
        raise StageSchemaError(
            f"'{flat[0]}' beside '{events[0]}': give channels inside event groups "
            f"({', '.join(EVENTS)}) or the original's flat form with channels only",
            path=join(path, flat[0]),
        )
    if events:
        return {event: _group(value[event], join(path, event)) for event in events}
    for key, channel in value.items():
        _channel(key, channel, join(path, key))
    if not value:
        return {}
    out: dict[str, Any] = {"completed": dict(value)}
    if "github" in value:
        out["started"] = {"github": value["github"]}
    return out
