"""From a normalized schema and run arguments to the jobs of a run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kraken.stage import StageSchemaError, expand_jobs, resolve_args
from kraken.stage.normalize import normalize_schema

Job = Callable[..., dict[str, Any]]

CONFIGS = [{"name": "c1", "p1": "one"}, {"name": "c2", "p1": "two"}]


def test_two_configs_times_two_systems_gives_four_jobs(job: Job) -> None:
    schema = normalize_schema(
        {"configs": CONFIGS, "jobs": [job(environments=[{"system": ["u22", "u24"], "executor": "docker"}])]}
    )
    specs = expand_jobs(schema, {})
    assert len(specs) == 4
    assert sorted((s.system, s.config_name) for s in specs) == [
        ("u22", "c1"),
        ("u22", "c2"),
        ("u24", "c1"),
        ("u24", "c2"),
    ]
    assert {s.name for s in specs} == {"build"}
    assert {s.executor for s in specs} == {"docker"}


def test_environment_config_selects_one_config(job: Job) -> None:
    envs = [{"system": "a", "config": "c2"}, {"system": "b"}]
    schema = normalize_schema({"configs": CONFIGS, "jobs": [job(environments=envs)]})
    specs = expand_jobs(schema, {})
    assert [(s.system, s.config_name) for s in specs] == [("a", "c2"), ("b", "c1"), ("b", "c2")]
    assert specs[0].config == {"name": "c2", "p1": "two"}


def test_no_configs_means_no_config(job: Job) -> None:
    [spec] = expand_jobs(normalize_schema({"jobs": [job()]}), {})
    assert (spec.config, spec.config_name) == (None, None)
    assert (spec.agents_group, spec.executor, spec.timeout) == ("all", "direct", 3600.0)


def test_jobs_and_steps(job: Job) -> None:
    steps = [
        {"tool": "git", "checkout": "u", "name": "get #{what}"},
        {
            "tool": "shell",
            "cmd": "make #{what}",
            "timeout": 60,
            "when": "always",
            "attempts": 3,
            "sleep_time_after_attempt": 5,
        },
    ]
    schema = normalize_schema(
        {
            "parameters": [{"name": "what", "default": "all"}],
            "jobs": [job(name="a", timeout=120, steps=steps), job(name="b")],
        }
    )
    a, b = expand_jobs(schema, {})
    assert (a.name, a.timeout, b.name) == ("a", 120.0, "b")
    get, make = a.steps
    assert (get.index, get.tool, get.tool_version, get.name, get.fields) == (
        0,
        "git",
        None,
        "get all",
        {"checkout": "u"},
    )
    assert (make.index, make.tool, make.fields) == (1, "shell", {"cmd": "make all"})
    assert (make.timeout, make.when, make.attempts, make.sleep_time_after_attempt) == (60.0, "always", 3, 5.0)
    assert (get.timeout, get.when, get.attempts) == (None, None, 1)


def test_args_override_defaults_and_config_values_interpolate(job: Job) -> None:
    steps = [{"tool": "shell", "cmd": "run --n=#{N} --p=#{config.p1} --t=#{secrets.T}"}]
    schema = normalize_schema(
        {
            "parameters": [{"name": "N", "type": "integer", "default": 1}],
            "configs": CONFIGS,
            "jobs": [job(steps=steps, environments=[{"config": "c1"}])],
        }
    )
    [spec] = expand_jobs(schema, {"N": "7"})
    assert spec.steps[0].fields["cmd"] == "run --n=7 --p=one --t=#{secrets.T}"


def test_unknown_argument_names_the_step_field(job: Job) -> None:
    schema = normalize_schema(
        {"jobs": [job(steps=[{"tool": "shell", "cmd": "x"}, {"tool": "shell", "cmd": "#{zzz}"}])]}
    )
    with pytest.raises(StageSchemaError) as info:
        expand_jobs(schema, {})
    assert info.value.path == "jobs[0].steps[1].cmd"
    assert "'zzz'" in info.value.message


def test_limits_from_job_and_environment(job: Job) -> None:
    envs = [{"system": "a", "limits": {"memory": "256m", "network": False}}, {"system": "b"}]
    schema = normalize_schema({"jobs": [job(limits={"memory": "1g", "cpus": 2}, environments=envs)]})
    a, b = expand_jobs(schema, {})
    assert a.limits == {"memory": 256 << 20, "cpus": 2, "network": False}
    assert b.limits == {"memory": 1 << 30, "cpus": 2}


def test_resolve_args_defaults_overlay_and_types() -> None:
    schema = {
        "parameters": [
            {"name": "N", "type": "integer", "default": 1},
            {"name": "X", "type": "number", "default": 0.5},
            {"name": "FLAG", "type": "boolean", "default": False},
            {"name": "S", "type": "string", "default": "s"},
        ]
    }
    assert resolve_args(schema, {}) == {"N": 1, "X": 0.5, "FLAG": False, "S": "s"}
    assert resolve_args(schema, {"N": "12", "X": "2.5", "FLAG": "true", "extra": [1]}) == {
        "N": 12,
        "X": 2.5,
        "FLAG": True,
        "S": "s",
        "extra": [1],
    }


def test_resolve_args_rejects_a_bad_value() -> None:
    schema = {"parameters": [{"name": "N", "type": "integer", "default": 1}]}
    with pytest.raises(StageSchemaError) as info:
        resolve_args(schema, {"N": "many"})
    assert info.value.path == "args.N"


def test_resolve_args_requires_parameters_without_default() -> None:
    with pytest.raises(StageSchemaError) as info:
        resolve_args({"parameters": [{"name": "V", "type": "string"}]}, {})
    assert info.value.path == "args.V"
    assert resolve_args({"parameters": [{"name": "V", "type": "string"}]}, {"V": 3}) == {"V": "3"}


def test_parallel_fans_a_job_into_its_parts(job: Callable[..., dict[str, Any]]) -> None:
    pytest_job = job(name="tests", parallel=3, steps=[{"tool": "pytest", "params": "tests"}])
    shell_job = job(
        name="sh",
        parallel=2,
        tests_list="cat tests.txt",
        steps=[{"tool": "shell", "cmd": "run-tests $(cat #{KK_TESTS_FILE})"}],
    )
    specs = expand_jobs(
        normalize_schema({"jobs": [pytest_job, shell_job, job(name="one", parallel=1, steps=[{"tool": "pytest"}])]}), {}
    )
    assert [s.name for s in specs] == ["tests [1/3]", "tests [2/3]", "tests [3/3]", "sh [1/2]", "sh [2/2]", "one"]
    assert [s.split for s in specs[:3]] == [
        {"part": p, "parts": 3, "group": "tests", "tests_list": None} for p in (1, 2, 3)
    ]
    assert specs[3].split == {"part": 1, "parts": 2, "group": "sh", "tests_list": "cat tests.txt"}
    assert specs[4].steps[0].fields["cmd"] == "run-tests $(cat $KK_TESTS_FILE)"
    assert specs[5].split is None
