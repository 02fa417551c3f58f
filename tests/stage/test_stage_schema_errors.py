"""Schema errors name the key path in the user's terms."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kraken.stage import StageContext, StageSchemaError, evaluate_stage
from kraken.stage.normalize import normalize_schema

Job = Callable[..., dict[str, Any]]


def _error(document: dict[str, Any]) -> StageSchemaError:
    with pytest.raises(StageSchemaError) as info:
        normalize_schema(document)
    return info.value


async def test_bad_executor_through_the_sandbox(make_code: Callable[[dict[str, Any]], str], job: Job) -> None:
    code = make_code({"jobs": [job(environments=[{"system": "x", "executor": "kvm"}])]})
    with pytest.raises(StageSchemaError) as info:
        await evaluate_stage(code, StageContext())
    err = info.value
    assert err.path == "jobs[0].environments[0].executor"
    assert str(err) == "jobs[0].environments[0].executor: 'kvm' is not one of ['direct','docker','lxd','local']"
    assert err.to_dict()["line"] is None


def test_missing_steps(job: Job) -> None:
    document = {"jobs": [job()]}
    del document["jobs"][0]["steps"]
    err = _error(document)
    assert err.path == "jobs[0].steps"
    assert "required" in err.message


def test_empty_steps(job: Job) -> None:
    err = _error({"jobs": [job(steps=[])]})
    assert (err.path, err.message) == ("jobs[0].steps", "must not be empty")


def test_missing_jobs() -> None:
    err = _error({"parent": "root"})
    assert err.path == "jobs"


def test_wrong_type_of_job_timeout(job: Job) -> None:
    err = _error({"jobs": [job(), job(name="b", timeout="1h")]})
    assert err.path == "jobs[1].timeout"
    assert err.message == "expected number, got string '1h'"


def test_wrong_type_of_tool_field(job: Job) -> None:
    err = _error({"jobs": [job(steps=[{"tool": "git", "checkout": "u"}, {"tool": "shell", "cmd": 5}])]})
    assert err.path == "jobs[0].steps[1].cmd"
    assert err.message == "expected string, got integer 5"


def test_tool_schema_alternatives(job: Job) -> None:
    err = _error({"jobs": [job(steps=[{"tool": "shell", "cwd": "x"}])]})
    assert err.path == "jobs[0].steps[0]"
    assert err.message == "exactly one of 'cmd', 'script' is required"


def test_required_tool_field(job: Job) -> None:
    err = _error({"jobs": [job(steps=[{"tool": "git", "branch": "main"}])]})
    assert err.path == "jobs[0].steps[0].checkout"


def test_unknown_tool_names_the_step_and_the_known_tools(job: Job) -> None:
    err = _error({"jobs": [job(steps=[{"tool": "shell", "cmd": "a"}, {"tool": "foo", "x": 1}])]})
    assert err.path == "jobs[0].steps[1].tool"
    assert "unknown tool 'foo'" in err.message
    assert "git" in err.message and "shell" in err.message and "pytest" in err.message


@pytest.mark.parametrize("tool", ["data", "nglint"])
def test_tools_of_the_original_that_are_not_available(job: Job, tool: str) -> None:
    err = _error({"jobs": [job(steps=[{"tool": "shell", "cmd": "true"}, {"tool": tool, "cwd": "x"}])]})
    assert err.path == "jobs[0].steps[1].tool"
    assert f"the tool '{tool}' is not available" in err.message


def test_registered_tool_fields_are_validated(job: Job) -> None:
    with pytest.raises(StageSchemaError) as err:
        normalize_schema({"jobs": [job(steps=[{"tool": "junit_collect", "file": "r.xml"}])]})
    assert err.value.path is not None and err.value.path.startswith("jobs[0].steps[0]")


@pytest.mark.parametrize(
    ("where", "path"),
    [
        ("top", "colour"),
        ("job", "jobs[0].colour"),
        ("env", "jobs[0].environments[0].colour"),
        ("triggers", "triggers.colour"),
        ("limits", "jobs[0].limits.colour"),
    ],
)
def test_unknown_keys_are_rejected(job: Job, where: str, path: str) -> None:
    document: dict[str, Any] = {"jobs": [job(limits={"cpus": 2})], "triggers": {}}
    target = {
        "top": document,
        "job": document["jobs"][0],
        "env": document["jobs"][0]["environments"][0],
        "triggers": document["triggers"],
        "limits": document["jobs"][0]["limits"],
    }[where]
    target["colour"] = "red"
    err = _error(document)
    assert err.path == path
    assert err.message.startswith("unknown key 'colour' (allowed: ")


def test_step_common_key_types_are_checked(job: Job) -> None:
    err = _error({"jobs": [job(steps=[{"tool": "shell", "cmd": "a", "attempts": 0}])]})
    assert err.path == "jobs[0].steps[0].attempts"
    assert err.message == "must be at least 1, got 0"


def test_duplicate_job_names(job: Job) -> None:
    err = _error({"jobs": [job(name="x"), job(name="y"), job(name="x")]})
    assert err.path == "jobs[2].name"
    assert err.message == "duplicate job name 'x' (also jobs[0])"


def test_environment_naming_an_undeclared_config_is_a_label(job: Job) -> None:
    document = {
        "configs": [{"name": "c1"}],
        "jobs": [job(environments=[{"system": "a"}, {"system": "b", "config": "c9"}])],
    }
    schema = normalize_schema(document)
    assert schema["jobs"][0]["environments"][1] == {
        "system": "b",
        "agents_group": "all",
        "executor": "direct",
        "config_label": "c9",
    }


def test_config_without_a_name(job: Job) -> None:
    err = _error({"configs": [{"p": 1}], "jobs": [job()]})
    assert err.path == "configs[0].name"


def test_duplicate_config_names(job: Job) -> None:
    err = _error({"configs": [{"name": "a"}, {"name": "a"}], "jobs": [job()]})
    assert err.path == "configs[1].name"


def test_invalid_cron(job: Job) -> None:
    err = _error({"triggers": {"cron": "every day"}, "jobs": [job()]})
    assert err.path == "triggers.cron"
    assert "cron" in err.message


@pytest.mark.parametrize("interval", ["soon", "10", "-5s", 0, -3, True])
def test_invalid_interval(job: Job, interval: Any) -> None:
    err = _error({"triggers": {"interval": interval}, "jobs": [job()]})
    assert err.path == "triggers.interval"


@pytest.mark.parametrize("interval", ["90s", "10m", "1h", "1h30m", "2d", 600, 1.5])
def test_valid_interval_is_kept_as_given(job: Job, interval: Any) -> None:
    assert normalize_schema({"triggers": {"interval": interval}, "jobs": [job()]})["triggers"] == {"interval": interval}


def test_invalid_trigger_date(job: Job) -> None:
    err = _error({"triggers": {"date": "tomorrow"}, "jobs": [job()]})
    assert err.path == "triggers.date"


def test_parameter_default_of_the_wrong_type(job: Job) -> None:
    document = {"parameters": [{"name": "n", "type": "integer", "default": "5"}], "jobs": [job()]}
    err = _error(document)
    assert err.path == "parameters[0].default"
    assert err.message == "expected integer, got string '5'"


@pytest.mark.parametrize("name", ["config", "secrets"])
def test_reserved_parameter_names(job: Job, name: str) -> None:
    err = _error({"parameters": [{"name": name, "default": "x"}], "jobs": [job()]})
    assert err.path == "parameters[0].name"


def test_duplicate_parameter_names(job: Job) -> None:
    err = _error({"parameters": [{"name": "a"}, {"name": "a"}], "jobs": [job()]})
    assert err.path == "parameters[1].name"


def test_bad_memory_limit(job: Job) -> None:
    err = _error({"jobs": [job(environments=[{"limits": {"memory": "lots"}}])]})
    assert err.path == "jobs[0].environments[0].limits.memory"


@pytest.mark.parametrize(
    ("step", "path", "message"),
    [
        ({"tool": "pytest", "rerun_failed": 11}, "jobs[0].steps[0].rerun_failed", "must be at most 10, got 11"),
        ({"tool": "pytest", "rerun_failed": -1}, "jobs[0].steps[0].rerun_failed", "must be at least 0"),
        ({"tool": "pytest", "flaky_fails_run": "yes"}, "jobs[0].steps[0].flaky_fails_run", "expected boolean"),
        ({"tool": "junit_collect", "file_glob": "*", "rerun_failed": 2}, "jobs[0].steps[0].rerun_command", "required"),
        (
            {"tool": "junit_collect", "file_glob": "*", "rerun_command": "x"},
            "jobs[0].steps[0]",
            "'rerun_failed' is a dependency of 'rerun_command'",
        ),
    ],
)
def test_rerun_keys_name_their_path(job: Job, step: dict[str, Any], path: str, message: str) -> None:
    err = _error({"jobs": [job(steps=[step])]})
    assert err.path == path and message in err.message, (err.path, err.message)


@pytest.mark.parametrize(
    ("overrides", "path", "message"),
    [
        ({"parallel": 0}, "jobs[0].parallel", "must be at least 1"),
        ({"parallel": 65}, "jobs[0].parallel", "must be at most 64"),
        ({"parallel": 4}, "jobs[0].parallel", "needs a 'pytest' step"),
        ({"tests_list": "ls"}, "jobs[0].tests_list", "only a job split by 'parallel'"),
        ({"parallel": 2, "tests_list": "ls"}, "jobs[0].tests_list", "no step of the job reads"),
        (
            {"parallel": 2, "steps": [{"tool": "pytest"}, {"tool": "shell", "cmd": "x #{KK_TESTS_FILE}"}]},
            "jobs[0].steps[1]",
            "needs the job's 'tests_list'",
        ),
    ],
)
def test_parallel_keys_are_refused_where_they_would_do_nothing(
    job: Job, overrides: dict[str, Any], path: str, message: str
) -> None:
    err = _error({"jobs": [job(**overrides)]})
    assert err.path == path and message in err.message, (err.path, err.message)
