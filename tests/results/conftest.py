"""Fixtures for the results tests: a fresh schema (SQLModel create_all) on SQLite and PostgreSQL,
and a small world of project/branch/flows/runs/jobs made through the models."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlmodel import SQLModel

import kraken.models
import kraken.models.results  # registers the tables
from kraken.control.effects import Effects
from kraken.core.db import Database
from kraken.models import Branch, Flow, Job, Project, Run
from kraken.protocol import Issues, TestResults
from kraken.results.analysis import advance_branch, analyze_job
from kraken.results.ingest import on_issues, on_test_results

assert kraken.models


@pytest.fixture
async def rdb(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    yield db
    await db.dispose()


class World:
    """Creates rows the way the backbone would, and drives ingestion and analysis directly."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.project_id = 0
        self.branch_id = 0
        self._seq = {"ci": 0, "dev": 0}

    async def setup(self, name: str = "proj") -> World:
        async with self.db.transaction() as s:
            p = Project(name=name)
            s.add(p)
            await s.flush()
            b = Branch(project_id=p.id, name="main", branch_name="main")  # type: ignore[arg-type]
            s.add(b)
            await s.flush()
            self.project_id, self.branch_id = p.id, b.id  # type: ignore[assignment]
        return self

    async def flow(self, kind: str = "ci", state: str = "running") -> int:
        self._seq[kind] += 1
        async with self.db.transaction() as s:
            f = Flow(branch_id=self.branch_id, kind=kind, seq=self._seq[kind], state=state)
            s.add(f)
            await s.flush()
            return f.id  # type: ignore[return-value]

    async def job(
        self, flow_id: int, name: str = "tests", system: str = "linux", stage: str = "tests", run_id: int | None = None
    ) -> int:
        async with self.db.transaction() as s:
            if run_id is None:
                r = Run(flow_id=flow_id, stage_name=stage, state="running")
                s.add(r)
                await s.flush()
                run_id = r.id
            j = Job(run_id=run_id, name=name, system=system, state="running")  # type: ignore[arg-type]
            s.add(j)
            await s.flush()
            return j.id  # type: ignore[return-value]

    async def run_of(self, job_id: int) -> int:
        async with self.db.session() as s:
            job = await s.get(Job, job_id)
            assert job is not None
            return job.run_id

    async def send(self, job_id: int, results: list[list[Any]], batch: int = 5000, step_index: int = 0) -> None:
        for i in range(0, len(results), batch):
            async with self.db.transaction() as s:
                job = await s.get(Job, job_id)
                assert job is not None
                msg = TestResults(job_id=job_id, seq=1, step_index=step_index, results=results[i : i + batch])
                await on_test_results(s, job, msg, Effects())

    async def send_issues(self, job_id: int, issues: list[list[Any]], tool: str = "ruff") -> None:
        async with self.db.transaction() as s:
            job = await s.get(Job, job_id)
            assert job is not None
            await on_issues(s, job, Issues(job_id=job_id, seq=1, step_index=0, tool=tool, issues=issues), Effects())

    async def complete_job(self, job_id: int) -> None:
        async with self.db.transaction() as s:
            job = await s.get(Job, job_id)
            assert job is not None
            job.state = "completed"
            s.add(job)

    async def complete_flow(self, flow_id: int) -> None:
        async with self.db.transaction() as s:
            flow = await s.get(Flow, flow_id)
            assert flow is not None
            flow.state = "completed"
            s.add(flow)

    async def finish_job(self, job_id: int) -> None:
        """What the backbone does when a job ends: mark it completed, enqueue analyze_job_results."""
        await self.complete_job(job_id)
        await analyze_job(self.db, job_id)

    async def finish_flow(self, flow_id: int) -> None:
        """Flow completed: analyze_flow_results."""
        await self.complete_flow(flow_id)
        await advance_branch(self.db, self.branch_id)

    async def ci_flow(self, results: list[list[Any]], system: str = "linux") -> tuple[int, int]:
        """A whole CI flow with one job and the given results, completed and analysed."""
        flow = await self.flow("ci")
        job = await self.job(flow, system=system)
        await self.send(job, results)
        await self.finish_job(job)
        await self.finish_flow(flow)
        return flow, job

    async def results(self, job_id: int) -> dict[str, dict[str, Any]]:
        """name -> analysed fields of the job's results (last one for duplicate names)."""
        import sqlalchemy as sa

        from kraken.results.statuses import CHANGE_NAMES, STATUS_NAMES, flaky_rules

        async with self.db.session() as s:
            rows = (
                await s.execute(
                    sa.text(
                        "SELECT t.name, r.status, r.change, r.age, r.instability, r.flaky, r.flaky_rule, "
                        "r.relevancy, r.perf_change, r.perf, r.id FROM test_result r "
                        "JOIN test_case t ON t.id = r.test_case_id WHERE r.job_id = :j ORDER BY r.ord"
                    ),
                    {"j": job_id},
                )
            ).all()
        return {
            r[0]: {
                "status": STATUS_NAMES[r[1]],
                "change": CHANGE_NAMES[r[2]],
                "age": r[3],
                "instability": r[4],
                "flaky": bool(r[5]),
                "flaky_rules": flaky_rules(r[6]),
                "relevancy": r[7],
                "perf_change": r[8],
                "perf": r[9],
                "id": r[10],
            }
            for r in rows
        }


@pytest.fixture
async def world(rdb: Database) -> World:
    return await World(rdb).setup()


@contextlib.asynccontextmanager
async def admin_client(db: Database, router: Any, runtime: Any = None) -> AsyncIterator[Any]:
    """An HTTP client of a bare app holding ``router`` on ``db``, whose caller is an administrator
    (the routes check the caller's role in the project: kraken.api.authz). ``runtime``: what the
    routes that write through the server state use (``db``, ``bus``, ``queue``), else only ``db``."""
    from types import SimpleNamespace

    import httpx
    from fastapi import FastAPI

    from kraken.api.deps import SCOPES, Principal, current_principal
    from kraken.models import User

    app = FastAPI()
    app.include_router(router, prefix="/api")
    app.state.db = db
    if runtime is None:
        app.state.kraken = SimpleNamespace(runtime=SimpleNamespace(db=db))
    else:
        from kraken.api.state import ServerState

        app.state.kraken = ServerState(runtime=runtime)
    app.dependency_overrides[current_principal] = lambda: Principal(
        User(id=1, username="admin", password_hash="", is_admin=True), frozenset(SCOPES)
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c
