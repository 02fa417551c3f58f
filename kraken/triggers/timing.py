"""When a stage's timed triggers fire: ``cron`` (five fields, UTC), ``interval`` ("10m", "90s",
or seconds), ``date`` (one shot, ISO; UTC when no zone is given) and ``repository`` (a poll
every ``interval``, default ``KRAKEN_REPO_POLL_INTERVAL``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from kraken.stage.units import parse_interval

TIMED_KINDS = ("cron", "interval", "date", "repository")


def parse_date(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def repository_targets(
    triggers: dict[str, Any], schema: dict[str, Any], repo_url: str | None, branch_name: str
) -> list[dict[str, str | None]]:
    """The repositories (url, branch) a ``repository`` trigger polls.

    ``true``: the branch's repository (``repo_url`` at ``branch_name``), else the repositories
    the stage's git steps check out; an object or a list of objects names them (``url``,
    optional ``branch``)."""
    value = triggers.get("repository")
    targets: list[dict[str, str | None]] = []
    if value is True:
        if repo_url:
            targets.append({"url": repo_url, "branch": branch_name})
        else:
            for job in schema.get("jobs", []):
                for step in job.get("steps", []):
                    url = step.get("checkout")
                    if step.get("tool") == "git" and isinstance(url, str) and "#{" not in url:
                        targets.append({"url": url, "branch": step.get("branch")})
    elif isinstance(value, dict | list):
        for item in [value] if isinstance(value, dict) else value:
            url = item.get("url") or item.get("repo") or repo_url
            if url:
                default_branch = branch_name if url == repo_url else None
                targets.append({"url": str(url), "branch": item.get("branch") or default_branch})
    seen: set[tuple[str | None, str | None]] = set()
    unique = []
    for t in targets:
        if (t["url"], t["branch"]) not in seen:
            seen.add((t["url"], t["branch"]))
            unique.append(t)
    return unique


def repository_interval(triggers: dict[str, Any], default: float) -> float:
    value = triggers.get("repository")
    items = [value] if isinstance(value, dict) else value if isinstance(value, list) else []
    for item in items:
        if isinstance(item, dict) and item.get("interval") is not None:
            return parse_interval(item["interval"])
    return default


def stage_specs(
    triggers: dict[str, Any], schema: dict[str, Any], repo_url: str | None, branch_name: str, poll_default: float
) -> dict[str, str]:
    """{kind: spec} of a stage's timed triggers; a spec is a string that changes with the trigger."""
    specs: dict[str, str] = {}
    if triggers.get("cron"):
        specs["cron"] = str(triggers["cron"])
    if triggers.get("interval") is not None:
        specs["interval"] = repr(parse_interval(triggers["interval"]))
    if triggers.get("date"):
        specs["date"] = parse_date(str(triggers["date"])).isoformat()
    if triggers.get("repository"):
        targets = repository_targets(triggers, schema, repo_url, branch_name)
        if targets:
            interval = repository_interval(triggers, poll_default)
            specs["repository"] = json.dumps({"targets": targets, "interval": interval}, sort_keys=True)
    return specs


def first_fire(kind: str, spec: str, now: datetime) -> datetime | None:
    """When a new (or changed) trigger fires first."""
    if kind == "cron":
        from croniter import croniter  # loaded by the first cron trigger, not by every server (#13)

        return croniter(spec, now).get_next(datetime)
    if kind == "interval":
        return now + timedelta(seconds=float(spec))
    if kind == "date":
        when = parse_date(spec)
        return when if when > now else None
    if kind == "repository":
        return now  # the first poll takes the baseline
    raise ValueError(kind)


def next_fire(kind: str, spec: str, scheduled: datetime | None, now: datetime) -> datetime | None:
    """After a fire (or poll) at ``now`` of one scheduled for ``scheduled``: the next time.
    Fire times missed while no planner ran are not caught up one by one: one fire, then on."""
    if kind == "cron":
        from croniter import croniter  # loaded by the first cron trigger, not by every server (#13)

        return croniter(spec, now).get_next(datetime)
    if kind == "interval":
        step = timedelta(seconds=float(spec))
        nxt = (scheduled or now) + step
        return nxt if nxt > now else now + step
    if kind == "date":
        return None
    if kind == "repository":
        return now + timedelta(seconds=float(json.loads(spec)["interval"]))
    raise ValueError(kind)
