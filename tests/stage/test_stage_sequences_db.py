"""The original's sequences and branch variables at run start, through the orchestration, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlmodel import col, select

from kraken.control import orchestration
from kraken.control.effects import Effects
from kraken.core.db import Database
from kraken.models import Branch, Job, Project, Run, Stage, Step
from kraken.models.enums import FlowKind
from kraken.stage import check_stage_code

CODE = """
def stage(ctx):
    cmd = "#{KK_FLOW_SEQ} #{KK_CI_DEV_FLOW_SEQ} #{KK_RUN_SEQ} #{KK_CI_DEV_RUN_SEQ} #{env.V} " + str(ctx.run.seq.own)
    return {"jobs": [{"name": "j", "environments": [{"config": "default"}], "steps": [{"tool": "shell", "cmd": cmd}]}]}
"""


async def test_sequences_count_per_branch_kind_and_stage(db: Database) -> None:
    async with db.transaction() as s:
        project = Project(name="p")
        s.add(project)
        await s.flush()
        branch = Branch(project_id=project.id, name="main", branch_name="main", env_vars={"V": "v1"})  # type: ignore[arg-type]
        s.add(branch)
        await s.flush()
        schema = await check_stage_code(CODE)
        for name in ("a", "b"):
            s.add(Stage(branch_id=branch.id, name=name, schema_code=CODE, schema_=schema))  # type: ignore[arg-type]
        branch_id = branch.id
    assert branch_id is not None
    for kind in (FlowKind.CI, FlowKind.DEV, FlowKind.CI):
        effects = Effects()
        async with db.transaction() as s:
            branch = await s.get(Branch, branch_id)
            assert branch is not None
            await orchestration.create_flow(s, branch, kind, {}, effects)
        await orchestration.evaluate_pending(db, effects)  # the runs' stage code, after the commit
    async with db.session() as s:
        rows = await s.execute(
            select(Run.stage_name, Step.fields)
            .join(Job, col(Job.run_id) == Run.id)
            .join(Step, col(Step.job_id) == Job.id)
            .order_by(col(Run.flow_id), col(Run.stage_name))
        )
        cmds = [(stage, fields["cmd"]) for stage, fields in rows.all()]
    # flow shared/own, run (of this stage) shared/own, the branch's variable, ctx.run.seq.own
    assert cmds == [
        ("a", "1 1 1 1 v1 1"),
        ("b", "1 1 1 1 v1 1"),
        ("a", "2 1 2 1 v1 1"),
        ("b", "2 1 2 1 v1 1"),
        ("a", "3 2 3 2 v1 2"),
        ("b", "3 2 3 2 v1 2"),
    ]
