"""A run's failures grouped by cause (their ``failure_key``, see ``kraken.results.signatures``),
each group with its tests and its history in the branch's earlier CI flows.

"Earlier" means CI flows of the same branch created before the run's flow (a lower flow id):
for a CI flow the flows before it, for a dev flow the CI flows that ran before it.  A group
seen there is a known cause; the earliest such flow is where it first appeared."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from kraken.results.signatures import signature

RECENT_FLOWS = 10  # earlier flows listed per group, newest first


@dataclass
class FlowSeen:
    flow_id: int
    flow_seq: int
    run_id: int
    count: int


@dataclass
class Group:
    key: str
    count: int
    message: str | None
    signature: str
    tests: list[dict[str, Any]] = field(default_factory=list)
    earlier_flows: int = 0
    first_seen: FlowSeen | None = None
    recent: list[FlowSeen] = field(default_factory=list)


@dataclass
class RunGroups:
    failures: int
    unkeyed: int
    causes: int
    groups: list[Group]


_TESTS_SQL = (
    "SELECT r.id, r.test_case_id, t.name, r.job_id, r.status, r.change, r.flaky FROM test_result r "
    "JOIN test_case t ON t.id = r.test_case_id WHERE r.run_id = :r AND r.failure_key = :k AND r.id > :after "
    "ORDER BY r.id LIMIT :n"
)


async def group_tests(session: AsyncSession, run_id: int, key: str, after: int, limit: int) -> list[dict[str, Any]]:
    """The failures of ``run_id`` with ``key``, by id, after the result id ``after``."""
    rows = (await session.execute(sa.text(_TESTS_SQL), {"r": run_id, "k": key, "after": after, "n": limit})).all()
    return [
        {
            "result_id": int(r[0]),
            "test_case_id": int(r[1]),
            "test": r[2],
            "job_id": int(r[3]),
            "status": int(r[4]),
            "change": int(r[5]),
            "flaky": bool(r[6]),
        }
        for r in rows
    ]


async def run_flow(session: AsyncSession, run_id: int) -> tuple[int, int] | None:
    """(flow id, branch id) of a run."""
    row = (
        await session.execute(
            sa.text("SELECT r.flow_id, f.branch_id FROM run r JOIN flow f ON f.id = r.flow_id WHERE r.id = :r"),
            {"r": run_id},
        )
    ).one_or_none()
    return (int(row[0]), int(row[1])) if row is not None else None


async def run_groups(session: AsyncSession, run_id: int, limit: int, tests: int) -> RunGroups:
    """The run's causes, largest first (then by key), at most ``limit`` of them with ``tests`` tests each."""
    place = await run_flow(session, run_id)
    assert place is not None
    flow_id, branch_id = place
    counts = (
        await session.execute(
            sa.text(
                "SELECT failure_key, count(*), min(id) FROM test_result WHERE run_id = :r AND failure_key IS NOT NULL "
                "GROUP BY failure_key"
            ),
            {"r": run_id},
        )
    ).all()
    failures = int(
        (
            await session.execute(
                sa.text("SELECT count(*) FROM test_result WHERE run_id = :r AND relevancy > 0 AND status IN (1, 2)"),
                {"r": run_id},
            )
        ).scalar()
        or 0
    )
    ordered = sorted(counts, key=lambda c: (-int(c[1]), str(c[0])))
    keyed = sum(int(c[1]) for c in counts)
    chosen = ordered[:limit]
    groups: list[Group] = []
    if chosen:
        first_ids = [int(c[2]) for c in chosen]
        messages: dict[int, str | None] = dict(
            (
                await session.execute(
                    sa.text("SELECT id, message FROM test_result WHERE id IN :ids").bindparams(
                        sa.bindparam("ids", expanding=True)
                    ),
                    {"ids": first_ids},
                )
            ).all()
        )
        for key, n, first in chosen:
            msg = messages.get(first)
            groups.append(Group(key=str(key), count=int(n), message=msg, signature=signature(msg)))
        for g in groups:
            g.tests = await group_tests(session, run_id, g.key, 0, tests) if tests else []
        await _history(session, branch_id, flow_id, groups)
    return RunGroups(failures=failures, unkeyed=failures - keyed, causes=len(counts), groups=groups)


async def _history(session: AsyncSession, branch_id: int, flow_id: int, groups: list[Group]) -> None:
    """Fill in where each group appeared in the branch's earlier CI flows."""
    rows = (
        await session.execute(
            sa.text(
                "SELECT r.failure_key, r.flow_id, f.seq, min(r.run_id), count(*) FROM test_result r "
                "JOIN flow f ON f.id = r.flow_id "
                "WHERE r.branch_id = :b AND r.failure_key IN :keys AND r.flow_id < :f AND r.flow_kind = 0 "
                "GROUP BY r.failure_key, r.flow_id, f.seq"
            ).bindparams(sa.bindparam("keys", expanding=True)),
            {"b": branch_id, "keys": [g.key for g in groups], "f": flow_id},
        )
    ).all()
    seen: dict[str, list[FlowSeen]] = {}
    for key, fid, seq, rid, n in rows:
        seen.setdefault(str(key), []).append(FlowSeen(int(fid), int(seq), int(rid), int(n)))
    for g in groups:
        flows = sorted(seen.get(g.key, []), key=lambda s: s.flow_id)
        g.earlier_flows = len(flows)
        g.first_seen = flows[0] if flows else None
        g.recent = list(reversed(flows[-RECENT_FLOWS:]))
