"""The original Kraken's stage code: Python-isms converted, its ``ctx`` and its ``#{...}`` variables."""

from __future__ import annotations

import pytest

from kraken.stage import StageContext, StageSchemaError, evaluate_stage, expand_jobs
from kraken.stage.normalize import normalize_schema
from kraken.stage.pycompat import to_starlark

TABS = (
    "def stage(ctx):\n"
    "\tsteps = []\n"
    "\tfor i in range(2):\t# two steps\n"
    '\t\tsteps.append({"tool": "shell", "cmd": "echo\\t%d" % i})\n'
    "\tif ctx.args.extra is not None:\n"
    '\t\tsteps.append({"tool": "shell", "cmd": "echo " + ctx.args.extra})\n'
    '\treturn {"jobs": [{"name": "j", "steps": steps, "environments": [{"config": "default"}]}]}\n'
)


async def test_tab_indented_code_runs() -> None:
    schema = await evaluate_stage(TABS, StageContext())
    assert [s["cmd"] for s in schema["jobs"][0]["steps"]] == ["echo\t0", "echo\t1"]
    schema = await evaluate_stage(TABS, StageContext(args={"extra": "more"}))
    assert schema["jobs"][0]["steps"][-1]["cmd"] == "echo more"


async def test_errors_in_converted_code_keep_their_line() -> None:
    code = TABS.replace("\tif ctx.args.extra is not None:\n", "\tif undefined_name is not None:\n")
    with pytest.raises(StageSchemaError) as info:
        await evaluate_stage(code, StageContext())
    assert info.value.line == 5 and "undefined_name" in info.value.message


async def test_syntax_errors_after_tabs_keep_their_line() -> None:
    code = "def stage(ctx):\n\tx = 1\n\n\treturn {\n\t\t'jobs': [\n\t]]\n"
    with pytest.raises(StageSchemaError) as info:
        await evaluate_stage(code, StageContext())
    assert info.value.line == 6


def test_conversion_keeps_lines_and_strings() -> None:
    code = 'x = "a\tb"  \t# c\nif x is not None and x is None:\n\tpass\n'
    out = to_starlark(code)
    assert out.count("\n") == code.count("\n")
    assert out.splitlines() == ['x = "a\tb"   # c', "if x != None and x == None:", "        pass"]


def test_ctx_dict_methods_stay() -> None:
    code = 'a = ctx.args.get("x", 1)\nb = ctx.env.keys()\nc = ctx.env.HOME\nd = other.ctx.args.y\n'
    assert to_starlark(code).splitlines() == [
        'a = ctx.args.get("x", 1)',
        "b = ctx.env.keys()",
        'c = ctx.env.get("HOME")',
        "d = other.ctx.args.y",
    ]


CTX = """
def stage(ctx):
    return {
        "description": "|".join([str(v) for v in [
            ctx.env.MY_VAR, ctx.project.name, ctx.project.id, ctx.branch.name, ctx.branch.branch_name,
            ctx.branch_name, ctx.flow.kind, ctx.flow.seq.own, ctx.flow.seq.shared, ctx.flow.label,
            ctx.flow.data, ctx.run.id, ctx.run.seq.own, ctx.run.seq.shared, ctx.is_ci, ctx.is_dev,
            ctx.stage.name, ctx.args.n,
        ]]),
        "jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "true"}], "environments": [{}]}],
    }
"""


async def test_ctx_offers_what_the_original_offered() -> None:
    ctx = StageContext(
        args={"n": 3},
        env={"MY_VAR": "hello"},
        branch_name="master",
        branch_display_name="Master",
        flow_kind="dev",
        project_name="kraken",
        project_id=7,
        flow_id=11,
        flow_seq=4,
        flow_shared_seq=9,
        flow_label="bld-4",
        run_id=21,
        run_seq=2,
        run_shared_seq=5,
        stage_name="Tests",
    )
    schema = await evaluate_stage(CTX, ctx)
    assert schema["description"] == "hello|kraken|7|Master|master|master|dev|4|9|bld-4|{}|21|2|5|False|True|Tests|3"


def _steps(*steps: dict[str, object], parameters: list[dict[str, object]] | None = None) -> dict[str, object]:
    return normalize_schema(
        {
            "parameters": parameters or [],
            "jobs": [{"name": "j", "steps": list(steps), "environments": [{"config": "default"}]}],
        }
    )


def test_both_forms_of_the_original_interpolation() -> None:
    ctx = StageContext(
        args={},
        env={"REL": "r1", "MY_VAR": "x"},
        flow_kind="ci",
        flow_seq=3,
        flow_shared_seq=8,
        run_seq=2,
        run_shared_seq=6,
        branch_name="main",
    )
    cmd = (
        "#{KK_FLOW_SEQ} #{KK_CI_DEV_FLOW_SEQ} #{KK_RUN_SEQ} #{KK_CI_DEV_RUN_SEQ} #{flow.seq.shared} "
        "#{flow.seq.own} #{run.seq.shared} #{run.seq.own} #{flow.kind} #{args.COUNT} #{COUNT} #{env.REL} "
        "#{branch.branch_name} #{secrets.tok} #{KK_SECRET_SIMPLE_tok}"
    )
    schema = _steps(
        {"tool": "shell", "cmd": cmd, "env": {"MY_VAR": "own"}},
        {"tool": "git", "checkout": "u/#{env.REL}"},
        parameters=[{"name": "COUNT", "default": "10"}],
    )
    (job,) = expand_jobs(schema, {}, ctx.variables())
    shell, git = job.steps
    assert shell.fields["cmd"] == "8 3 6 2 8 3 6 2 ci 10 10 r1 main #{secrets.tok} #{KK_SECRET_SIMPLE_tok}"
    # the branch's variables reach every step's environment with the job's assignment (the
    # step's own win there): they are not copied into the step's fields
    assert shell.fields["env"] == {"MY_VAR": "own"}
    assert git.fields == {"checkout": "u/r1"}


def test_unknown_variable_lists_what_there_is() -> None:
    schema = _steps({"tool": "shell", "cmd": "echo #{env.NOPE}"})
    with pytest.raises(StageSchemaError) as info:
        expand_jobs(schema, {}, StageContext(env={"A": "1"}, flow_seq=1, flow_shared_seq=1).variables())
    assert info.value.path == "jobs[0].steps[0].cmd"
    assert "unknown argument 'env.NOPE'" in info.value.message and "KK_FLOW_SEQ" in info.value.message


@pytest.mark.parametrize("name", ["env", "flow", "args", "KK_FLOW_SEQ"])
def test_builtin_names_are_reserved_for_parameters(name: str) -> None:
    with pytest.raises(StageSchemaError) as info:
        _steps({"tool": "shell", "cmd": "true"}, parameters=[{"name": name, "default": "1"}])
    assert info.value.path == "parameters[0].name" and "reserved" in info.value.message


def test_adjacent_strings_are_joined_in_parentheses() -> None:
    code = 'x = "a" "b" % y\nz = ["c"\n\t"d",\t"e"]\n'
    assert to_starlark(code).splitlines() == ['x = ("a" + "b") % y', 'z = [("c" +', '        "d"), "e"]']


async def test_implicit_string_concatenation_evaluates_like_python() -> None:
    code = (
        "def stage(ctx):\n"
        '    cmd = ("echo %s-"\n'
        '           "%s" % ("a", "b"))\n'
        '    return {"jobs": [{"name": "j", "environments": [{}], "steps": [{"tool": "shell", "cmd": cmd}]}]}\n'
    )
    schema = await evaluate_stage(code, StageContext())
    assert schema["jobs"][0]["steps"][0]["cmd"] == "echo a-b"


def test_chained_assignment_to_names_is_split_on_its_line() -> None:
    code = 'a = b = []\nx = y = z = {"k": [1,\n  2]}  # c\nf = lambda v=1: v\nd[k] = e = 1\nq = r = "s" "t"\n'
    assert to_starlark(code).splitlines() == [
        "b = []; a = b",
        'z = {"k": [1,',
        "  2]}; x = z; y = z  # c",
        "f = lambda v=1: v",
        "d[k] = e = 1",
        'r = ("s" + "t"); q = r',
    ]


async def test_chained_assignment_evaluates_like_python() -> None:
    code = (
        "def stage(ctx):\n"
        "    steps = more = []\n"
        '    more.append({"tool": "shell", "cmd": "true"})\n'
        '    return {"jobs": [{"name": "j", "environments": [{}], "steps": steps}]}\n'
    )
    schema = await evaluate_stage(code, StageContext())
    assert schema["jobs"][0]["steps"] == [{"tool": "shell", "cmd": "true"}]
