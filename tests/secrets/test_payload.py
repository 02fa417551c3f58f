"""A job's payload carries only the secrets its steps refer to, resolved; stored fields keep
the references; log lines are masked before they are stored (real databases)."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import col, select

from kraken.control import orchestration
from kraken.control.effects import Effects
from kraken.control.job_message_dispatch import handler_for
from kraken.core.config import Settings
from kraken.core.db import Database
from kraken.models import Branch, Job, LogChunk, Project, Stage, Step
from kraken.models.enums import FlowKind
from kraken.models.secrets import Secret
from kraken.protocol import Log
from kraken.secrets import store as secrets_store
from kraken.stage import check_stage_code

CODE = """
def stage(ctx):
    return {"jobs": [{"name": "j", "steps": [
        {"tool": "shell", "cmd": "deploy --token #{secrets.used}"},
        {"tool": "git", "checkout": "ssh://h/r", "ssh-key": "key"},
    ], "environments": [{"system": "any"}]}]}
"""


async def test_payload_has_only_referenced_secrets(db: Database, tmp_path: Path) -> None:
    secrets_store.configure(Settings(data_dir=tmp_path))
    schema = await check_stage_code(CODE)
    async with db.transaction() as s:
        p = Project(name="p")
        s.add(p)
        await s.flush()
        b = Branch(project_id=p.id, name="main", branch_name="main")  # type: ignore[arg-type]
        s.add(b)
        await s.flush()
        s.add(Stage(branch_id=b.id, name="s", schema_code=CODE, schema_=schema))  # type: ignore[arg-type]
        for name, value in (("used", "tok-123456"), ("unused", "never-sent")):
            s.add(Secret(project_id=p.id, name=name, kind="simple", data=secrets_store.encode("simple", value)))  # type: ignore[arg-type]
        ssh = secrets_store.encode("ssh-key", user="git", key="K" * 40)
        s.add(Secret(project_id=p.id, name="key", kind="ssh-key", data=ssh))  # type: ignore[arg-type]
    effects = Effects()
    async with db.transaction() as s:
        branch = await s.get(Branch, b.id)
        assert branch is not None
        flow = await orchestration.create_flow(s, branch, FlowKind.CI, {}, effects)
    await orchestration.evaluate_pending(db, effects)
    async with db.session() as s:
        job = (await s.execute(select(Job))).scalar_one()
        payload = await orchestration.job_payload(s, job)
        stored = (await s.execute(select(Step.fields).order_by(col(Step.index)))).scalars().all()
    assert set(payload["secrets"]) == {"used", "key"}
    assert payload["secrets"]["key"] == {"kind": "ssh-key", "user": "git", "key": "K" * 40}
    assert payload["steps"][0]["fields"]["cmd"] == "deploy --token tok-123456"
    assert stored[0]["cmd"] == "deploy --token #{secrets.used}"
    assert "never-sent" not in str(payload)

    handler = handler_for("log")
    assert handler is not None
    async with db.transaction() as s:
        job = (await s.execute(select(Job).where(Job.id == job.id))).scalar_one()
        msg = Log(job_id=job.id, seq=1, step_index=0, lines=["token is tok-123456!", "K" * 40])
        await handler(s, job, msg, Effects())
    async with db.session() as s:
        [chunk] = (await s.execute(select(LogChunk))).scalars().all()
    assert chunk.text == "token is ******!\n******"
    assert flow.id is not None
