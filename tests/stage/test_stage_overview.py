"""The stage example of the project overview is accepted unchanged."""

from __future__ import annotations

from kraken.stage import StageContext, check_stage_code, evaluate_stage, expand_jobs


async def test_overview_example_normalized(overview_code: str) -> None:
    schema = await evaluate_stage(overview_code, StageContext())

    assert schema["parent"] == "Unit Tests"
    assert schema["triggers"] == {
        "parent": True,
        "cron": "1 * * * *",
        "interval": "10m",
        "repository": True,
        "webhook": True,
    }
    assert schema["parameters"] == []
    assert schema["configs"] == [
        {"name": "c1", "p1": "1", "p2": "3"},
        {"name": "c2", "n3": "33", "t2": "asdf"},
    ]
    assert len(schema["jobs"]) == 1
    job = schema["jobs"][0]
    assert job["name"] == "make dist"
    assert job["timeout"] == 3600
    assert [step["tool"] for step in job["steps"]] == ["git", "pytest"]
    assert job["steps"][0] == {
        "tool": "git",
        "checkout": "https://github.com/frankhjung/python-helloworld.git",
        "branch": "master",
    }
    assert job["steps"][1] == {
        "tool": "pytest",
        "params": "tests/testhelloworld.py",
        "cwd": "python-helloworld",
    }
    assert job["environments"] == [
        {"system": "ubuntu-18.04", "agents_group": "all", "executor": "direct", "config": "c1"}
    ]
    assert schema["notification"] == {"changes": {"slack": {"channel": "kk-results"}, "email": "godfryd@gmail.com"}}


async def test_overview_example_passes_the_create_check(overview_code: str) -> None:
    checked = await check_stage_code(overview_code)
    assert checked == await evaluate_stage(overview_code, StageContext(flow_kind="dev"))


async def test_overview_example_expands_to_one_job_with_config_c1(overview_code: str) -> None:
    schema = await evaluate_stage(overview_code, StageContext())
    [spec] = expand_jobs(schema, {})
    assert spec.name == "make dist"
    assert (spec.executor, spec.system, spec.agents_group) == ("direct", "ubuntu-18.04", "all")
    assert spec.config_name == "c1"
    assert spec.config == {"name": "c1", "p1": "1", "p2": "3"}
    assert spec.timeout == 3600.0
    assert [(s.index, s.tool) for s in spec.steps] == [(0, "git"), (1, "pytest")]
    assert spec.steps[1].fields == {"params": "tests/testhelloworld.py", "cwd": "python-helloworld"}
