"""Validate what ``stage(ctx)`` returned and bring it to its normalized form.

The normalized schema always has ``parent``, ``triggers``, ``parameters``, ``configs``,
``jobs`` and ``notification``; ``flow_label``, ``run_label``, ``timeout`` and
``description`` appear when given. Defaults: ``parent`` ``"root"``; ``triggers``
``{"parent": True}`` under a parent stage, else ``{}``; ``triggers.repo`` → ``repository``.
"""

from __future__ import annotations

import datetime
from typing import Any

from kraken.stage.context import BUILTIN_NAMES, LEGACY_PREFIX
from kraken.stage.errors import StageSchemaError
from kraken.stage.json_schema import validate_document
from kraken.stage.normalize_jobs import normalize_jobs
from kraken.stage.notification import normalize_notification
from kraken.stage.paths import join
from kraken.stage.schema_errors import describe
from kraken.stage.units import INTERVAL_HINT, parse_interval

RESERVED_ARG_NAMES = frozenset({"config", "secrets"}) | BUILTIN_NAMES
OPTIONAL_KEYS = ("flow_label", "run_label", "timeout", "description")


def _check_trigger_formats(triggers: dict[str, Any]) -> None:
    from croniter import croniter  # on first use: a server that checks no stage never loads it (#13)

    if "cron" in triggers and not croniter.is_valid(triggers["cron"]):
        raise StageSchemaError(f"{triggers['cron']!r} is not a valid cron expression", path="triggers.cron")
    if "interval" in triggers:
        try:
            parse_interval(triggers["interval"])
        except ValueError:
            raise StageSchemaError(
                f"{triggers['interval']!r} is not a valid interval ({INTERVAL_HINT})",
                path="triggers.interval",
            ) from None
    if "date" in triggers:
        try:
            datetime.datetime.fromisoformat(triggers["date"])
        except ValueError:
            raise StageSchemaError(
                f"{triggers['date']!r} is not an ISO date and time (e.g. '2030-01-31T12:00:00')",
                path="triggers.date",
            ) from None


def normalize_triggers(triggers: dict[str, Any] | None, parent: str) -> dict[str, Any]:
    if triggers is None:
        return {"parent": True} if parent != "root" else {}
    out = dict(triggers)
    if "repo" in out:
        repo = out.pop("repo")
        if "repository" in out and out["repository"] != repo:
            raise StageSchemaError("'repo' and its alias 'repository' differ; give one", path="triggers.repo")
        out["repository"] = _repositories(repo, "triggers.repo")
    elif "repository" in out:
        out["repository"] = _repositories(out["repository"], "triggers.repository")
    _check_trigger_formats(out)
    return out


def _repositories(value: Any, path: str) -> Any:
    """The original's ``{"repos": [...], "interval": ...}`` as a list of ``{url, branch, interval}``."""
    if not isinstance(value, dict):
        return value
    if "git_cfg" in value:
        raise StageSchemaError(
            "git_cfg of a repository trigger is not supported (the poll runs plain 'git ls-remote')",
            path=join(path, "git_cfg"),
        )
    if "repos" not in value:
        return value
    interval = {"interval": value["interval"]} if "interval" in value else {}
    items = [dict(item) for item in value["repos"]]
    if value.get("url") or value.get("repo"):
        items.insert(0, {key: value[key] for key in ("url", "repo", "branch") if key in value})
    return [{**item, **interval} for item in items]


def _matches_type(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, (int, float)) and not isinstance(value, bool)  # number


def normalize_parameters(parameters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, int] = {}
    out = []
    for i, param in enumerate(parameters):
        path = join("parameters", i)
        name = param["name"]
        if name in RESERVED_ARG_NAMES or name.startswith(LEGACY_PREFIX):
            raise StageSchemaError(f"'{name}' is reserved, choose another parameter name", path=join(path, "name"))
        first = seen.setdefault(name, i)
        if first != i:
            raise StageSchemaError(
                f"duplicate parameter name '{name}' (also parameters[{first}])", path=join(path, "name")
            )
        kind = param.get("type", "string")
        if "default" in param and not _matches_type(param["default"], kind):
            raise StageSchemaError(f"expected {kind}, got {describe(param['default'])}", path=join(path, "default"))
        normalized: dict[str, Any] = {"name": name, "type": kind, "description": param.get("description", "")}
        if "default" in param:
            normalized["default"] = param["default"]
        out.append(normalized)
    return out


def normalize_configs(configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, int] = {}
    for i, config in enumerate(configs):
        first = seen.setdefault(config["name"], i)
        if first != i:
            raise StageSchemaError(
                f"duplicate config name '{config['name']}' (also configs[{first}])",
                path=join(join("configs", i), "name"),
            )
    return [dict(config) for config in configs]


def normalize_schema(document: dict[str, Any]) -> dict[str, Any]:
    """The normalized schema, or ``StageSchemaError`` naming the offending key path."""
    validate_document(document)
    parent = document.get("parent", "root")
    configs = normalize_configs(document.get("configs", []))
    out: dict[str, Any] = {
        "parent": parent,
        "triggers": normalize_triggers(document.get("triggers"), parent),
        "parameters": normalize_parameters(document.get("parameters", [])),
        "configs": configs,
        "jobs": normalize_jobs(document["jobs"], [config["name"] for config in configs]),
        "notification": normalize_notification(document.get("notification", {})),
    }
    out.update((key, document[key]) for key in OPTIONAL_KEYS if key in document)
    return out
