"""kraken/results/queries.py on SQLite and PostgreSQL: every filter and every sort order, paged
with its keyset cursor through the whole result set, against the run's rows read plainly."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa

from kraken.results.queries import (
    SORTS,
    InvalidCursor,
    InvalidFilter,
    Keyset,
    ResultFilter,
    decode_cursor,
    encode_cursor,
    page_sql,
)
from kraken.results.statuses import CHANGE_CODES, STATUS_CODES, STATUS_NAMES
from kraken.results.summary import combine, job_summaries
from tests.results.conftest import World

STATUSES = ("passed", "failed", "error", "skipped", "disabled", "not-run")


def name(i: int) -> str:
    return f"suite::t_{i:03d}"


def flow1() -> list[list[Any]]:
    # 60 tests; every 7th fails, every 11th is skipped
    return [
        [name(i), "failed" if i % 7 == 0 else "skipped" if i % 11 == 0 else "passed", (i % 5) / 10, None, None]
        for i in range(60)
    ]


def flow2_a() -> list[list[Any]]:
    """Flips both ways, every status, ties and missing durations, new tests, a rerun (flaky)."""
    out: list[list[Any]] = []
    for i in range(70):  # 60..69 are new
        status = STATUSES[(i // 4) % 6] if i % 4 == 0 else "failed" if i % 7 == 0 and i % 14 else "passed"
        duration = None if i % 9 == 0 else (i % 5) / 10
        out.append([name(i), status, duration, "boom" if status in ("failed", "error") else None, None])
    out.append([name(3), "failed", 0.25, "first try", None])  # t_003 passes above: same-commit flaky
    return out


def flow2_b() -> list[list[Any]]:
    # another job of the same run, another environment: all its tests are new there
    return [[name(i), "error" if i % 13 == 0 else "passed", 0.3, None, None] for i in range(0, 60, 3)]


@pytest.fixture
async def run(world: World) -> int:
    await world.ci_flow(flow1())
    flow = await world.flow()
    ja = await world.job(flow, name="a")
    run_id = await world.run_of(ja)
    jb = await world.job(flow, name="b", system="windows", run_id=run_id)
    await world.send(ja, flow2_a())
    await world.send(jb, flow2_b())
    await world.finish_job(ja)
    await world.finish_job(jb)
    await world.finish_flow(flow)
    return run_id


async def all_rows(world: World, run_id: int) -> list[dict[str, Any]]:
    async with world.db.session() as s:
        rows = (
            await s.execute(
                sa.text(
                    "SELECT r.id, r.status, r.change, r.flaky, r.relevancy, r.duration, r.job_id, t.name "
                    "FROM test_result r JOIN test_case t ON t.id = r.test_case_id WHERE r.run_id = :r"
                ),
                {"r": run_id},
            )
        ).mappings()
        return [dict(r) | {"flaky": bool(r["flaky"])} for r in rows]


def expected(rows: list[dict[str, Any]], f: ResultFilter, sort: str) -> list[int]:
    def match(r: dict[str, Any]) -> bool:
        return (
            (f.statuses is None or r["status"] in f.statuses)
            and (f.changes is None or r["change"] in f.changes)
            and (f.flaky is None or r["flaky"] == f.flaky)
            and (f.job_id is None or r["job_id"] == f.job_id)
            and (not f.name or f.name in r["name"])
        )

    keys = {
        "relevancy": lambda r: (-r["relevancy"], -r["id"]),
        "id": lambda r: r["id"],
        "-id": lambda r: -r["id"],
        "-duration": lambda r: (-(r["duration"] if r["duration"] is not None else -1), -r["id"]),
    }
    return [r["id"] for r in sorted(filter(match, rows), key=keys[sort])]


async def page_through(world: World, f: ResultFilter, sort: str, limit: int) -> list[int]:
    keyset = Keyset(sort)  # type: ignore[arg-type]
    ids: list[int] = []
    cursor = None
    for _ in range(1000):
        async with world.db.session() as s:
            sql = page_sql(f, keyset, cursor, limit, world.db.is_sqlite)
            rows = (await s.execute(sa.text(sql), f.params())).mappings().all()
        assert len(rows) <= limit + 1
        ids += [r["id"] for r in rows[:limit]]
        if len(rows) <= limit:
            return ids
        cursor = keyset.cursor_of(rows[limit - 1])
    raise AssertionError("the pages never end")


async def total(world: World, f: ResultFilter) -> int:
    async with world.db.session() as s:
        if f.name:
            return int((await s.execute(sa.text(f.count_sql(world.db.is_sqlite)), f.params())).scalar() or 0)
        return f.matrix_total(combine(await job_summaries(s, f.run_id, f.job_id))["matrix"])


async def test_every_filter_and_sort_pages_through_without_gaps_or_repeats(world: World, run: int) -> None:
    rows = await all_rows(world, run)
    jobs = sorted({r["job_id"] for r in rows})
    # the data covers what the filters select on
    assert {STATUS_NAMES[r["status"]] for r in rows} == set(STATUSES)
    assert {r["change"] for r in rows} == set(CHANGE_CODES.values())
    assert any(r["flaky"] for r in rows) and len(jobs) == 2
    assert any(r["duration"] is None for r in rows)
    assert len({r["relevancy"] for r in rows}) > 2

    p = ResultFilter.parse
    filters = [
        p(run),
        *(p(run, status=s) for s in STATUSES),
        p(run, status="failed,error"),
        p(run, status="passed,skipped"),
        *(p(run, change=c) for c in CHANGE_CODES),
        p(run, change="fix,regression"),
        p(run, change="none, new"),
        p(run, status="failed", change="regression"),
        p(run, status="passed", change="fix"),
        p(run, flaky=True),
        p(run, flaky=False),
        p(run, job_id=jobs[1]),
        p(run, job_id=jobs[0], flaky=False, status="passed,failed"),
        p(run, name="t_00"),
        p(run, name="_0"),  # literal underscore
        p(run, name="%"),  # literal percent: nothing
        p(run, name="t_01", job_id=jobs[0], change="none"),
    ]
    project = world.project_id
    for f in filters:
        f = replace(f, project_id=project) if f.name else f
        want_total = len(expected(rows, f, "id"))
        assert await total(world, f) == want_total, f
        for sort in SORTS:
            want = expected(rows, f, sort)
            for limit in (1, 7) if len(want) < 20 else (7,):
                got = await page_through(world, f, sort, limit)
                assert len(got) == len(set(got)), (f, sort, limit)  # no row twice
                assert got == want, (f, sort, limit)  # none missing, in order
    assert await total(world, replace(p(run, name="%"), project_id=project)) == 0
    assert await total(world, p(run, status="passed")) == sum(r["status"] == 0 for r in rows) > 0


def test_parse_names_and_refuses_unknown_values() -> None:
    f = ResultFilter.parse(1, status="failed, error", change="regression", flaky=False, job_id=3, name="")
    assert (f.statuses, f.changes, f.flaky, f.job_id, f.name) == (
        (STATUS_CODES["failed"], STATUS_CODES["error"]),
        (CHANGE_CODES["regression"],),
        False,
        3,
        None,
    )
    with pytest.raises(InvalidFilter, match="unknown status 'bogus'"):
        ResultFilter.parse(1, status="passed,bogus")
    with pytest.raises(InvalidFilter, match="unknown change 'worse'"):
        ResultFilter.parse(1, change="worse")


def test_where_clauses_narrow_to_the_index_ranges() -> None:
    assert ResultFilter(7).where(sqlite=True) == ["r.run_id = 7"]
    regressions = ResultFilter.parse(7, change="regression").where(sqlite=False)
    assert regressions == ["r.run_id = 7", "r.change IN (3)", "r.change <> 0", "r.relevancy >= 1"]
    assert "r.relevancy = 0" in ResultFilter.parse(7, status="passed,skipped").where(sqlite=True)
    assert ResultFilter(7, flaky=True).where(sqlite=True)[-1] == "r.flaky = 1"
    assert ResultFilter(7, flaky=True).where(sqlite=False)[-1] == "r.flaky = TRUE"
    named = ResultFilter(7, name="a%b_c\\", project_id=2)
    assert named.params() == {"project": 2, "q": "%a\\%b\\_c\\\\%"}
    assert ResultFilter(7).params() == {}


@pytest.mark.parametrize("sort", SORTS)
def test_cursors_round_trip_and_bad_ones_are_refused(sort: str) -> None:
    keyset = Keyset(sort)  # type: ignore[arg-type]
    row = {"id": 42, "relevancy": 3, "duration": None}
    cursor = keyset.cursor_of(row)
    extra, legs = keyset.after(cursor)
    assert extra or legs
    assert keyset.after(None) == ([], [])
    n = 2 if sort in ("relevancy", "-duration") else 1
    for bad in ("%%%", encode_cursor(*range(n + 1)), "InRydWUi", encode_cursor(1)[:-1] + "!"):
        with pytest.raises(InvalidCursor):
            keyset.after(bad)
    assert decode_cursor(encode_cursor(1.5, 2), 2) == [1.5, 2]
