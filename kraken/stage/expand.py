"""Expand a normalized stage schema into the jobs of a run: jobs x environments x configs, and a
job with ``"parallel": N`` into its N parts (``name [i/N]``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kraken.stage.args import resolve_args
from kraken.stage.interpolate import interpolate_at
from kraken.stage.json_schema import EXECUTOR_ALIASES, STEP_COMMON_KEYS
from kraken.stage.paths import join
from kraken.stage.specs import DEFAULT_JOB_TIMEOUT, JobSpec, StepSpec
from kraken.stage.tools import split_tool

_NOT_FIELDS = frozenset(STEP_COMMON_KEYS) | {"tool_version"}


def _step(index: int, step: dict[str, Any], values: Mapping[str, Any], path: str) -> StepSpec:
    _, version = split_tool(step["tool"])
    fields = {key: value for key, value in step.items() if key not in _NOT_FIELDS}
    name = step.get("name")
    timeout = step.get("timeout")
    return StepSpec(
        index=index,
        tool=step["tool"],  # a custom tool keeps its version: "name@version"
        name=interpolate_at(name, values, join(path, "name")) if name is not None else None,
        fields={key: interpolate_at(value, values, join(path, key)) for key, value in fields.items()},
        timeout=float(timeout) if timeout is not None else None,
        when=step.get("when"),
        attempts=int(step.get("attempts", 1)),
        sleep_time_after_attempt=float(step.get("sleep_time_after_attempt", 0)),
        tool_version=step.get("tool_version", version),  # None for built-in tools
    )


def _configs_for(env: dict[str, Any], configs: dict[str, dict[str, Any]]) -> list[dict[str, Any] | None]:
    """The named config, else all configs (fan-out), else none; a ``config_label`` is no config."""
    if env.get("config"):
        return [configs[env["config"]]]
    if env.get("config_label"):
        return [None]
    if configs:
        return list(configs.values())
    return [None]


def expand_jobs(
    schema: dict[str, Any], args: Mapping[str, Any], variables: Mapping[str, Any] | None = None
) -> list[JobSpec]:
    """One ``JobSpec`` per job, environment (one per system) and config; job names and step
    fields interpolated.

    ``args`` are overlaid on the parameters' defaults (``resolve_args``) and can be read as
    ``#{NAME}`` or ``#{args.NAME}``; ``#{config.KEY}`` reads the job's config; ``variables``
    are the run's built-in variables (``StageContext.variables()``).  The branch's environment
    variables reach the steps' environment through the job's assignment (``job_payload``).
    """
    resolved = resolve_args(schema, args)
    builtins = dict(variables or {})
    base = {**resolved, **builtins, "args": resolved}
    configs = {config["name"]: config for config in schema.get("configs", [])}
    specs: list[JobSpec] = []
    for i, job in enumerate(schema["jobs"]):
        steps_path = join(join("jobs", i), "steps")
        for env in job["environments"]:
            systems = env.get("system", "any")
            executor = env.get("executor", "direct")
            for system in [systems] if isinstance(systems, str) else systems:
                for config in _configs_for(env, configs):
                    values = {**base, "config": config} if config is not None else base
                    name = interpolate_at(job["name"], values, join(join("jobs", i), "name"))
                    parts = int(job.get("parallel") or 0)
                    parts = parts if parts > 1 else 0  # "parallel": 1 is one job, as without it
                    if parts:  # the steps read their share's file from the environment
                        values = {**values, "KK_TESTS_FILE": "$KK_TESTS_FILE"}
                    for part in range(1, parts + 1) if parts else [0]:
                        split = None
                        if part:
                            split = {"part": part, "parts": parts, "group": name, "tests_list": job.get("tests_list")}
                        specs.append(
                            JobSpec(
                                name=f"{name} [{part}/{parts}]" if part else name,
                                timeout=float(job.get("timeout", DEFAULT_JOB_TIMEOUT)),
                                executor=EXECUTOR_ALIASES.get(executor, executor),
                                system=system,
                                agents_group=env.get("agents_group") or env.get("executor_group") or "all",
                                config=dict(config) if config is not None else None,
                                config_name=config["name"] if config is not None else env.get("config_label"),
                                steps=[
                                    _step(j, step, values, join(steps_path, j)) for j, step in enumerate(job["steps"])
                                ],
                                limits={**job.get("limits", {}), **env.get("limits", {})},
                                split=split,
                            )
                        )
    return specs
