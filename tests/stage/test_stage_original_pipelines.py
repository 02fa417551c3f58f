"""Compatibility: pipelines written in the original Kraken's style (its documentation's examples and
pipelines modelled on them: parent chains, a manual publish stage, flow labels from sequences,
legacy secret names, flat notifications, tab indentation, ``config: "default"``) are accepted
unchanged and expand with the original's meaning."""

from __future__ import annotations

from pathlib import Path

import pytest

from kraken.stage import StageContext, check_stage_code, check_stage_graph, evaluate_stage, expand_jobs

ORIGINAL = Path(__file__).parent / "data" / "original"
PIPELINES = sorted(path.name for path in ORIGINAL.glob("*.star"))


def _ctx(**overrides: object) -> StageContext:
    base: dict[str, object] = {
        "env": {"MY_VAR": "hello"},
        "branch_name": "master",
        "flow_kind": "ci",
        "flow_seq": 5,
        "flow_shared_seq": 12,
        "run_seq": 4,
        "run_shared_seq": 9,
    }
    base.update(overrides)
    return StageContext(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", PIPELINES)
async def test_original_pipeline_is_accepted_and_expands(name: str) -> None:
    code = (ORIGINAL / name).read_text()
    await check_stage_code(code, _ctx())
    schema = await evaluate_stage(code, _ctx())
    specs = expand_jobs(schema, {}, _ctx().variables())
    assert specs and all(spec.steps for spec in specs)
    for spec in specs:
        assert spec.config is None  # configs were never implemented in the original: a label
        for step in spec.steps:
            text = repr(step.fields)
            assert "#{KK_FLOW_SEQ}" not in text and "#{env." not in text and "#{COUNT}" not in text


def test_the_examples_are_tab_indented_where_the_original_allowed_it() -> None:
    assert "\n\t\t" in (ORIGINAL / "lint_tabs.star").read_text()


async def test_parent_chain_with_a_manual_publish_stage() -> None:
    parents = {}
    for name, stage in (("tarball.star", "Tarball"), ("build.star", "Build"), ("publish.star", "Publish")):
        schema = await evaluate_stage((ORIGINAL / name).read_text(), _ctx())
        parents[stage] = schema["parent"]
        if stage == "Publish":
            assert schema["triggers"] == {"manual": True}
        if stage == "Build":
            assert schema["notification"]["started"] == {
                "github": {"credentials": "#{KK_SECRET_SIMPLE_gh_status_creds}"}
            }
    check_stage_graph(parents)
    assert parents == {"Tarball": "root", "Build": "Tarball", "Publish": "Build"}


async def test_sequences_and_legacy_secrets_expand() -> None:
    schema = await evaluate_stage((ORIGINAL / "build.star").read_text(), _ctx())
    [spec] = expand_jobs(schema, {}, _ctx().variables())
    assert spec.config_name == "c1" and spec.executor == "docker"
    login, make = spec.steps[2], spec.steps[3]
    assert login.fields["env"]["REGISTRY_KEY"] == "#{KK_SECRET_SIMPLE_registry_key}"  # resolved on the job's path
    # the branch's variables reach the steps through the job's assignment, not the step's fields
    assert make.fields["env"] == {"app_ver": "0.12"}


async def test_context_example_depends_on_flow_kind_args_and_env() -> None:
    code = (ORIGINAL / "context.star").read_text()
    ci = expand_jobs(await evaluate_stage(code, _ctx(args={"testing_scope": "full"})), {}, _ctx().variables())
    dev_ctx = _ctx(flow_kind="dev", args={"testing_scope": "full"})
    dev = expand_jobs(await evaluate_stage(code, dev_ctx), {}, dev_ctx.variables())
    assert sorted(s.system for s in ci) == ["debian:bullseye", "fedora:37", "ubuntu:22.04"]
    assert [s.system for s in dev] == ["ubuntu:22.04"]
    steps = ci[0].steps
    assert ci[0].name == "job for branch master"
    assert steps[1].fields["cmd"] == "echo 'hello' full" and steps[2].fields["cmd"] == "echo 'hello'"
    assert "env" not in steps[0].fields  # the branch's variables come with the job's assignment
    assert steps[3].fields["background"] is True
