"""The JSON Schema of what ``stage(ctx)`` returns (before normalization, aliases included).

Strict (no unknown keys) at the top level, in jobs, environments, limits, triggers,
parameters and in the steps' common keys; a step's other keys are its tool's fields,
validated separately with the tool's own ``fields_schema`` (see ``kraken.stage.tools``).
Formats (cron, intervals, memory sizes, dates) are checked during normalization.
"""

from __future__ import annotations

import functools
from typing import Any

from kraken.protocol import MAX_PARTS, When
from kraken.stage.schema_errors import to_stage_error

EXECUTORS = ["direct", "docker", "lxd"]
EXECUTOR_ALIASES = {"local": "direct"}
PARAMETER_TYPES = ["string", "integer", "number", "boolean"]
STEP_COMMON_KEYS = ("tool", "name", "timeout", "when", "attempts", "sleep_time_after_attempt")

_NAME: dict[str, Any] = {"type": "string", "minLength": 1}
_TEXT: dict[str, Any] = {"type": "string"}
_SECONDS: dict[str, Any] = {"type": "number", "exclusiveMinimum": 0}

LIMITS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "cpus": {"type": "number", "exclusiveMinimum": 0},
        "memory": {"type": ["integer", "string"]},
        "pids": {"type": "integer", "minimum": 1},
        "network": {"type": "boolean"},
    },
}

ENVIRONMENT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "system": {"type": ["string", "array"], "minLength": 1, "minItems": 1, "items": _NAME},
        "agents_group": _NAME,
        "executor_group": _NAME,
        "executor": {"enum": EXECUTORS + list(EXECUTOR_ALIASES)},
        "config": _NAME,
        "limits": LIMITS,
    },
}

STEP: dict[str, Any] = {
    "type": "object",
    "required": ["tool"],
    "properties": {
        "tool": {
            "type": "string",
            "pattern": r"^[A-Za-z0-9_.-]+(@[A-Za-z0-9_.+-]+)?$",
            "x-hint": "a tool name, optionally with a version: 'name@1.2'",
        },
        "name": _TEXT,
        "timeout": _SECONDS,
        "when": {"enum": [w.value for w in When]},
        "attempts": {"type": "integer", "minimum": 1},
        "sleep_time_after_attempt": {"type": "number", "minimum": 0},
    },
}

JOB: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "steps", "environments"],
    "properties": {
        "name": _NAME,
        "timeout": _SECONDS,
        "steps": {"type": "array", "minItems": 1, "items": STEP},
        "environments": {"type": "array", "minItems": 1, "items": ENVIRONMENT},
        "limits": LIMITS,
        # split by timing into this many jobs (kraken.agent.tools.split); tests_list: the command that
        # lists the tests for the steps that read #{KK_TESTS_FILE}
        "parallel": {"type": "integer", "minimum": 1, "maximum": MAX_PARTS},
        "tests_list": {"type": "string", "minLength": 1},
    },
}

_URL_BRANCH: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"url": _NAME, "repo": _NAME, "branch": _NAME, "interval": {"type": ["number", "string"]}},
}
# A repository trigger: true (the branch's repository), {url, branch, interval}, a list of them,
# or the original's {"repos": [{url, branch}], "interval": ...}; ``git_cfg`` is refused later.
_REPOSITORY: dict[str, Any] = {
    "type": ["boolean", "object", "array"],
    "additionalProperties": False,
    "properties": {
        **_URL_BRANCH["properties"],
        "repos": {"type": "array", "minItems": 1, "items": _URL_BRANCH},
        "git_cfg": {"type": "object"},
    },
    "items": _URL_BRANCH,
}

TRIGGERS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "parent": {"type": "boolean"},
        "manual": {"type": "boolean"},
        "cron": {"type": "string", "minLength": 1},
        "interval": {"type": ["number", "string"]},
        "date": {"type": "string", "minLength": 1},
        "repository": _REPOSITORY,
        "repo": _REPOSITORY,
        "webhook": {"type": "boolean"},
    },
}

PARAMETER: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {
            "type": "string",
            "pattern": r"^[A-Za-z_][A-Za-z0-9_-]*$",
            "x-hint": "letters, digits, '_' and '-', not starting with a digit",
        },
        "type": {"enum": PARAMETER_TYPES},
        "default": {},
        "description": _TEXT,
    },
}

CONFIG: dict[str, Any] = {"type": "object", "required": ["name"], "properties": {"name": _NAME}}

# Groups by event or the original's flat channels: checked in ``kraken.stage.notification``.
NOTIFICATION: dict[str, Any] = {"type": "object"}

STAGE: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["jobs"],
    "properties": {
        "parent": _NAME,
        "triggers": TRIGGERS,
        "parameters": {"type": "array", "items": PARAMETER},
        "configs": {"type": "array", "items": CONFIG},
        "jobs": {"type": "array", "minItems": 1, "items": JOB},
        "notification": NOTIFICATION,
        "flow_label": _TEXT,
        "run_label": _TEXT,
        "timeout": _SECONDS,
        "description": _TEXT,
    },
}


@functools.cache
def _validator() -> Any:
    """Built on first use: jsonschema is loaded only by a process that checks a stage (#13)."""
    import jsonschema

    return jsonschema.Draft202012Validator(STAGE)


def validate_document(document: dict[str, Any]) -> None:
    """Raise ``StageSchemaError`` (with the key path) for the most relevant violation, if any."""
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator().iter_errors(document))
    if error is not None:
        raise to_stage_error(error)
