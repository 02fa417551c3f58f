"""Normalization of a stage's ``jobs``: steps, environments, limits (after JSON Schema validation).

- ``executor_group`` → ``agents_group`` (both given and different → error); default ``all``
- ``executor``: ``local`` → ``direct``; default ``direct``
- ``system``: a list becomes one environment per system; default ``any``
- ``limits.memory`` → bytes
- step ``tool``: a custom tool becomes ``name@version`` (its latest version when none is given;
  ``kraken.stage.tools``)
- environment ``config`` naming no declared config: a plain label (as in the original Kraken,
  where configs were never implemented); it fans out to no config
- job ``timeout`` default ``DEFAULT_JOB_TIMEOUT``
- job ``parallel`` (split by timing into N jobs) and ``tests_list``: kept where they have an effect,
  refused otherwise
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from kraken.stage.errors import StageSchemaError
from kraken.stage.json_schema import EXECUTOR_ALIASES, STEP_COMMON_KEYS
from kraken.stage.paths import join
from kraken.stage.specs import DEFAULT_JOB_TIMEOUT
from kraken.stage.tools import check_tool_fields, check_tool_name
from kraken.stage.units import MEMORY_HINT, parse_memory


def normalize_limits(limits: dict[str, Any], path: str) -> dict[str, Any]:
    out = dict(limits)
    if "memory" in out:
        try:
            out["memory"] = parse_memory(out["memory"])
        except ValueError:
            raise StageSchemaError(
                f"{out['memory']!r} is not a memory size ({MEMORY_HINT})", path=join(path, "memory")
            ) from None
    return out


def normalize_step(step: dict[str, Any], path: str) -> dict[str, Any]:
    tool = check_tool_name(step["tool"], path)
    fields = {key: value for key, value in step.items() if key not in STEP_COMMON_KEYS}
    check_tool_fields(tool, fields, path)
    out: dict[str, Any] = {"tool": tool}
    out.update((key, value) for key, value in step.items() if key != "tool")
    return out


def _agents_group(env: dict[str, Any], path: str) -> str:
    group, alias = env.get("agents_group"), env.get("executor_group")
    if group is not None and alias is not None and group != alias:
        raise StageSchemaError(
            f"'agents_group' ({group!r}) and its alias 'executor_group' ({alias!r}) differ; give one",
            path=join(path, "executor_group"),
        )
    return str(group or alias or "all")


def normalize_environment(env: dict[str, Any], path: str, config_names: Collection[str]) -> list[dict[str, Any]]:
    """One normalized environment per system."""
    executor = env.get("executor", "direct")
    base: dict[str, Any] = {
        "agents_group": _agents_group(env, path),
        "executor": EXECUTOR_ALIASES.get(executor, executor),
    }
    if "config" in env:
        if env["config"] in config_names:
            base["config"] = env["config"]
        else:
            base["config_label"] = env["config"]
    if "limits" in env:
        base["limits"] = normalize_limits(env["limits"], join(path, "limits"))
    systems = env.get("system", "any")
    if isinstance(systems, str):
        systems = [systems]
    return [{"system": system, **base} for system in systems]


def normalize_job(job: dict[str, Any], path: str, config_names: Collection[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": job["name"],
        "timeout": job.get("timeout", DEFAULT_JOB_TIMEOUT),
        "steps": [normalize_step(step, join(join(path, "steps"), i)) for i, step in enumerate(job["steps"])],
        "environments": [
            normalized
            for i, env in enumerate(job["environments"])
            for normalized in normalize_environment(env, join(join(path, "environments"), i), config_names)
        ],
    }
    if "limits" in job:
        out["limits"] = normalize_limits(job["limits"], join(path, "limits"))
    out.update(_split(job, path))
    return out


TESTS_FILE_REF = "KK_TESTS_FILE"


def _reads_tests_file(step: dict[str, Any]) -> bool:
    return any(TESTS_FILE_REF in str(v) for k, v in step.items() if k not in STEP_COMMON_KEYS)


def _split(job: dict[str, Any], path: str) -> dict[str, Any]:
    """``parallel`` and ``tests_list``, refused where they would have no effect: a split job needs
    a ``pytest`` step or a ``tests_list`` for the steps that read ``#{KK_TESTS_FILE}``."""
    parallel, tests_list = job.get("parallel"), job.get("tests_list")
    readers = [i for i, step in enumerate(job["steps"]) if _reads_tests_file(step)]
    if parallel is None:
        if tests_list is not None:
            raise StageSchemaError("only a job split by 'parallel' lists its tests", path=join(path, "tests_list"))
        return {}
    if readers and tests_list is None:
        raise StageSchemaError(
            "#{KK_TESTS_FILE} needs the job's 'tests_list' (a command printing the tests, one a line)",
            path=join(join(path, "steps"), readers[0]),
        )
    if tests_list is not None and not readers:
        raise StageSchemaError("no step of the job reads #{KK_TESTS_FILE}", path=join(path, "tests_list"))
    if not readers and not any(step.get("tool") == "pytest" for step in job["steps"]):
        raise StageSchemaError(
            "a job split into parts needs a 'pytest' step, or steps reading #{KK_TESTS_FILE} with a 'tests_list'",
            path=join(path, "parallel"),
        )
    return {"parallel": parallel, **({"tests_list": tests_list} if tests_list is not None else {})}


def normalize_jobs(jobs: list[dict[str, Any]], config_names: Collection[str]) -> list[dict[str, Any]]:
    seen: dict[str, int] = {}
    out = []
    for i, job in enumerate(jobs):
        path = join("jobs", i)
        first = seen.setdefault(job["name"], i)
        if first != i:
            raise StageSchemaError(f"duplicate job name '{job['name']}' (also jobs[{first}])", path=join(path, "name"))
        out.append(normalize_job(job, path, config_names))
    return out
