"""What notifications say about culprits: the commit a search named, and the culprits already
known for a flow's failing tests.

A failing test of a CI run has a known culprit when a finished (``found``) search of the same
branch and stage, in this CI flow or an earlier one, named the commit that broke it, and the test
has not passed in a CI flow of the branch since that search's flow (else it was fixed and broke
again: another cause).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kraken.models import Flow, Run
from kraken.models.culprits import CulpritSearch
from kraken.models.enums import FlowKind
from kraken.results.statuses import ERROR, FAILED, KIND_CI, PASSED

FOUND = "found"
FINISHED = ("found", "range", "failed")  # the states a search ends in
SEARCHES_READ = 200  # the branch's latest found searches looked at for a flow's failing tests


def commit_info(search: CulpritSearch) -> dict[str, Any] | None:
    """The culprit's ``{id, author, email, timestamp, message}`` from the range."""
    for c in search.commits:
        if c.get("id") == search.culprit:
            return dict(c)
    return None


@dataclass
class KnownCulprit:
    search_id: int
    run_id: int  # the CI run whose regressions the search was for
    culprit: str
    commit: dict[str, Any] | None  # {id, author, email, timestamp, message}
    tests: list[str] = field(default_factory=list)  # the failing tests it broke (of the runs asked about)

    def as_json(self) -> dict[str, Any]:
        c = self.commit or {}
        return {
            "commit": self.culprit,
            "author": c.get("author"),
            "email": c.get("email"),
            "subject": c.get("message"),
            "tests": self.tests,
            "search_id": self.search_id,
            "run_id": self.run_id,
        }


Candidate = tuple[CulpritSearch, int, str]  # a found search, its CI flow's seq, its run's stage


async def candidate_searches(session: AsyncSession, flow: Flow, stages: set[str]) -> list[Candidate]:
    """Found searches of the branch's runs of ``stages`` in CI flows up to ``flow`` (newest
    first); none for a DEV flow (searches are about CI history)."""
    if flow.kind != FlowKind.CI or not stages:
        return []
    rows = await session.execute(
        select(CulpritSearch, Flow.seq, Run.stage_name)
        .join(Run, col(Run.id) == CulpritSearch.run_id)
        .join(Flow, col(Flow.id) == Run.flow_id)
        .where(
            CulpritSearch.branch_id == flow.branch_id,
            CulpritSearch.state == FOUND,
            col(Run.stage_name).in_(sorted(stages)),
            Flow.kind == FlowKind.CI,
            col(Flow.seq) <= flow.seq,
        )
        .order_by(col(Flow.seq).desc(), col(CulpritSearch.id).desc())
        .limit(SEARCHES_READ)
    )
    return [(s, int(seq), str(stage)) for s, seq, stage in rows.all()]


async def known_culprits(
    session: AsyncSession, flow: Flow, runs: list[Run], searches: list[Candidate]
) -> list[KnownCulprit]:
    """The culprits of the failing tests of ``runs`` (of ``flow``) among ``searches``
    (:func:`candidate_searches`), one entry per search, in the order of ``searches``. Reads the
    analysed results: tests whose results wait for analysis are not named."""
    if not searches:
        return []
    stage_of = {int(r.id or 0): r.stage_name for r in runs}
    names = sorted({t for s, _, _ in searches for t in s.tests})
    failing_rows = await session.execute(
        sa.text(
            "SELECT DISTINCT tc.name, tr.run_id FROM test_result tr JOIN test_case tc ON tc.id = tr.test_case_id "
            f"WHERE tr.run_id IN :runs AND tr.status IN ({FAILED}, {ERROR}) AND tc.name IN :names"
        ).bindparams(sa.bindparam("runs", expanding=True), sa.bindparam("names", expanding=True)),
        {"runs": sorted(stage_of), "names": names},
    )
    failing = {(str(name), stage_of[int(run_id)]) for name, run_id in failing_rows.all()}
    if not failing:
        return []
    passed_rows = await session.execute(
        sa.text(
            "SELECT tc.name, max(tr.flow_seq) FROM test_result tr JOIN test_case tc ON tc.id = tr.test_case_id "
            f"WHERE tr.branch_id = :b AND tr.flow_kind = {KIND_CI} AND tr.status = {PASSED} AND tc.name IN :names "
            "GROUP BY tc.name"
        ).bindparams(sa.bindparam("names", expanding=True)),
        {"b": flow.branch_id, "names": sorted({n for n, _ in failing})},
    )
    last_pass = {str(name): int(seq) for name, seq in passed_rows.all()}
    out: dict[int, KnownCulprit] = {}
    for name, stage in sorted(failing):
        for search, seq, search_stage in searches:  # newest first: the latest search that named it
            if search_stage != stage or name not in search.tests:
                continue
            if last_pass.get(name, -1) > seq:
                break  # passed since: it broke again, for another cause
            sid = int(search.id or 0)
            known = out.setdefault(sid, KnownCulprit(sid, int(search.run_id), str(search.culprit), commit_info(search)))
            known.tests.append(name)
            break
    order = [int(s.id or 0) for s, _, _ in searches]
    return sorted(out.values(), key=lambda k: order.index(k.search_id))
