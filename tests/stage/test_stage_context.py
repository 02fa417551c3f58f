"""What ``ctx`` offers the stage code, and the parameter defaults of the create check."""

from __future__ import annotations

import pytest

from kraken.stage import StageContext, check_stage_code, evaluate_stage

CTX_CODE = """
def stage(ctx):
    return {
        "description": "|".join([
            str(ctx.is_ci), str(ctx.is_dev), ctx.flow_kind, ctx.branch_name, ctx.project_name,
            ctx.stage_name, str(ctx.flow_id), str(ctx.flow_seq), str(ctx.run_id),
            str(ctx.args.get("x", 1)), str(ctx.trigger.get("pr", "-")),
        ]),
        "jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "true"}], "environments": [{}]}],
    }
"""


async def test_ctx_attributes_in_a_ci_flow() -> None:
    ctx = StageContext(
        args={"x": 5},
        branch_name="main",
        project_name="kraken",
        stage_name="Tests",
        flow_id=10,
        flow_seq=3,
        run_id=77,
        trigger={"pr": 12},
    )
    schema = await evaluate_stage(CTX_CODE, ctx)
    assert schema["description"] == "True|False|ci|main|kraken|Tests|10|3|77|5|12"


async def test_ctx_attributes_in_a_dev_flow_with_defaults() -> None:
    schema = await evaluate_stage(CTX_CODE, StageContext(flow_kind="dev"))
    assert schema["description"] == "False|True|dev||||None|None|None|1|-"


async def test_jobs_can_depend_on_the_flow_kind() -> None:
    code = """
def stage(ctx):
    jobs = [{"name": "unit", "steps": [{"tool": "shell", "cmd": "pytest"}], "environments": [{}]}]
    if ctx.is_ci:
        slow = [{"tool": "shell", "cmd": "pytest -m slow"}]
        jobs.append({"name": "slow", "steps": slow, "environments": [{}]})
    return {"jobs": jobs}
"""
    ci = await evaluate_stage(code, StageContext(flow_kind="ci"))
    dev = await evaluate_stage(code, StageContext(flow_kind="dev"))
    assert [job["name"] for job in ci["jobs"]] == ["unit", "slow"]
    assert [job["name"] for job in dev["jobs"]] == ["unit"]


def test_unknown_flow_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="flow_kind"):
        StageContext(flow_kind="nightly")


PARAM_CODE = """
def stage(ctx):
    n = ctx.args.get("COUNT", 0)
    steps = [{"tool": "shell", "cmd": "test #{COUNT}"}]
    return {
        "parameters": [{"name": "COUNT", "type": "integer", "default": 3}],
        "jobs": [
            {"name": "shard-%d" % i, "steps": steps, "environments": [{}]}
            for i in range(n)
        ] or [{"name": "none", "steps": [{"tool": "shell", "cmd": "true"}], "environments": [{}]}],
    }
"""


async def test_check_stage_code_evaluates_with_parameter_defaults() -> None:
    first_pass = await evaluate_stage(PARAM_CODE, StageContext())
    assert [job["name"] for job in first_pass["jobs"]] == ["none"]
    checked = await check_stage_code(PARAM_CODE)
    assert [job["name"] for job in checked["jobs"]] == ["shard-0", "shard-1", "shard-2"]


async def test_check_stage_code_keeps_the_given_context() -> None:
    code = 'def stage(ctx):\n    return {"description": ctx.branch_name, "jobs": ' + (
        '[{"name": "j", "steps": [{"tool": "shell", "cmd": "x"}], "environments": [{}]}]}\n'
    )
    checked = await check_stage_code(code, StageContext(branch_name="release"))
    assert checked["description"] == "release"
