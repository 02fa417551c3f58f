"""Normalization: aliases, defaults and the shape of the normalized schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kraken.stage import StageSchemaError
from kraken.stage.normalize import normalize_schema

Job = Callable[..., dict[str, Any]]


def _env(job: Job, **env: Any) -> dict[str, Any]:
    [normalized] = normalize_schema({"jobs": [job(environments=[env])]})["jobs"][0]["environments"]
    return dict(normalized)


def test_executor_group_is_agents_group(job: Job) -> None:
    assert _env(job, system="s", executor_group="gpu")["agents_group"] == "gpu"
    assert _env(job, system="s", agents_group="gpu", executor_group="gpu")["agents_group"] == "gpu"
    assert "executor_group" not in _env(job, system="s", executor_group="gpu")


def test_agents_group_and_its_alias_must_agree(job: Job) -> None:
    with pytest.raises(StageSchemaError) as info:
        normalize_schema({"jobs": [job(environments=[{"agents_group": "a", "executor_group": "b"}])]})
    assert info.value.path == "jobs[0].environments[0].executor_group"


@pytest.mark.parametrize(("given", "normalized"), [("local", "direct"), ("direct", "direct"), ("lxd", "lxd")])
def test_executor_aliases(job: Job, given: str, normalized: str) -> None:
    assert _env(job, executor=given)["executor"] == normalized


def test_environment_defaults(job: Job) -> None:
    assert _env(job) == {"system": "any", "agents_group": "all", "executor": "direct"}


def test_system_list_becomes_one_environment_per_system(job: Job) -> None:
    env = {"system": ["ubuntu-22.04", "fedora-40"], "executor": "docker", "config": "c"}
    schema = normalize_schema({"configs": [{"name": "c"}], "jobs": [job(environments=[env])]})
    assert schema["jobs"][0]["environments"] == [
        {"system": "ubuntu-22.04", "agents_group": "all", "executor": "docker", "config": "c"},
        {"system": "fedora-40", "agents_group": "all", "executor": "docker", "config": "c"},
    ]


def test_top_level_defaults(job: Job) -> None:
    schema = normalize_schema({"jobs": [job()]})
    assert schema == {
        "parent": "root",
        "triggers": {},
        "parameters": [],
        "configs": [],
        "jobs": [
            {
                "name": "build",
                "timeout": 3600,
                "steps": [{"tool": "shell", "cmd": "make"}],
                "environments": [{"system": "ubuntu-24.04", "agents_group": "all", "executor": "direct"}],
            }
        ],
        "notification": {},
    }


def test_parent_stage_gets_the_parent_trigger_by_default(job: Job) -> None:
    assert normalize_schema({"parent": "Build", "jobs": [job()]})["triggers"] == {"parent": True}
    assert normalize_schema({"parent": "Build", "triggers": {"manual": True}, "jobs": [job()]})["triggers"] == {
        "manual": True
    }


def test_repo_trigger_is_stored_as_repository(job: Job) -> None:
    repo = {"url": "https://example.org/r.git", "branch": "main", "interval": "5m"}
    schema = normalize_schema({"triggers": {"repo": repo}, "jobs": [job()]})
    assert schema["triggers"] == {"repository": repo}


def test_version_of_a_builtin_tool_is_refused(job: Job) -> None:
    with pytest.raises(StageSchemaError) as info:
        normalize_schema({"jobs": [job(steps=[{"tool": "git@2.1", "checkout": "u", "name": "get"}])]})
    assert info.value.path == "jobs[0].steps[0].tool"
    assert "the built-in tool 'git' has no versions" in info.value.message


def test_tool_version_of_an_unknown_tool_is_still_unknown(job: Job) -> None:
    with pytest.raises(StageSchemaError) as info:
        normalize_schema({"jobs": [job(steps=[{"tool": "nope@1.0"}])]})
    assert info.value.path == "jobs[0].steps[0].tool"


def test_limits_memory_in_bytes(job: Job) -> None:
    schema = normalize_schema(
        {"jobs": [job(limits={"memory": "1g", "cpus": 1.5}, environments=[{"limits": {"memory": "512m"}}])]}
    )
    assert schema["jobs"][0]["limits"] == {"memory": 1 << 30, "cpus": 1.5}
    assert schema["jobs"][0]["environments"][0]["limits"] == {"memory": 512 << 20}


def test_parameters_get_type_and_description(job: Job) -> None:
    params = [{"name": "COUNT", "type": "integer", "default": 3}, {"name": "flag"}]
    schema = normalize_schema({"parameters": params, "jobs": [job()]})
    assert schema["parameters"] == [
        {"name": "COUNT", "type": "integer", "description": "", "default": 3},
        {"name": "flag", "type": "string", "description": ""},
    ]


def test_optional_top_level_keys_are_kept(job: Job) -> None:
    extra = {"flow_label": "f-#{seq}", "run_label": "r", "timeout": 7200, "description": "d"}
    schema = normalize_schema({**extra, "jobs": [job()]})
    assert {key: schema[key] for key in extra} == extra
