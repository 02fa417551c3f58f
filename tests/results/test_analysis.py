"""Ingestion and analysis against history, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from tests.results.conftest import World


def res(names: list[str], status: str = "passed", **over: str) -> list[list[Any]]:
    return [[n, over.get(n, status), 0.01, None, None] for n in names]


NAMES = [f"tests/test_m.py::test_{i}" for i in range(20)]


async def test_regression_then_fix(world: World) -> None:
    _, j1 = await world.ci_flow(res(NAMES))
    r1 = await world.results(j1)
    assert {r["change"] for r in r1.values()} == {"new"}
    assert all(r["age"] == 0 for r in r1.values())

    _, j2 = await world.ci_flow(res(NAMES, **{NAMES[3]: "failed", NAMES[7]: "error"}))
    r2 = await world.results(j2)
    assert {n for n, r in r2.items() if r["change"] == "regression"} == {NAMES[3], NAMES[7]}
    assert {r["change"] for n, r in r2.items() if n not in (NAMES[3], NAMES[7])} == {"none"}
    assert r2[NAMES[0]]["age"] == 1 and r2[NAMES[3]]["age"] == 0
    assert r2[NAMES[3]]["relevancy"] > r2[NAMES[7]]["relevancy"] > 0  # failed beats error
    assert r2[NAMES[0]]["relevancy"] == 0

    _, j3 = await world.ci_flow(res(NAMES))
    r3 = await world.results(j3)
    assert {n for n, r in r3.items() if r["change"] == "fix"} == {NAMES[3], NAMES[7]}
    assert r3[NAMES[0]]["age"] == 2 and r3[NAMES[3]]["age"] == 0
    assert r3[NAMES[3]]["instability"] == 2
    assert not any(r["flaky"] for r in r3.values())


async def test_alternating_test_is_flaky_by_flip_rate(world: World) -> None:
    pattern = ["passed", "failed", "passed", "failed", "passed"]
    jobs = []
    for st in pattern:
        _, j = await world.ci_flow(res(NAMES[:3], **{NAMES[0]: st}))
        jobs.append(j)
    by_flow = [await world.results(j) for j in jobs]
    assert [r[NAMES[0]]["instability"] for r in by_flow] == [0, 1, 2, 3, 4]
    assert [r[NAMES[0]]["flaky"] for r in by_flow] == [False, False, False, True, True]
    assert by_flow[3][NAMES[0]]["flaky_rules"] == ["flip_rate"]
    assert not any(r[NAMES[1]]["flaky"] for r in by_flow)
    # a flaky failure ranks below a plain one
    assert by_flow[3][NAMES[0]]["relevancy"] < by_flow[1][NAMES[0]]["relevancy"]


async def test_flaky_same_commit_rerun_in_job(world: World) -> None:
    await world.ci_flow(res(NAMES[:3]))
    rerun = [*res(NAMES[:3], **{NAMES[1]: "failed"}), [NAMES[1], "passed", 0.02, None, None]]
    _, j = await world.ci_flow(rerun)
    async with world.db.session() as s:
        import sqlalchemy as sa

        rows = (
            await s.execute(
                sa.text("SELECT status, flaky, flaky_rule FROM test_result WHERE job_id = :j ORDER BY ord"), {"j": j}
            )
        ).all()
    # duplicates are kept as distinct results
    assert len(rows) == 4
    assert [(r[0], bool(r[1]), r[2]) for r in rows] == [(0, False, 0), (1, True, 1), (0, False, 0), (0, True, 1)]


async def _same_commit_two_jobs(world: World, first_passes: bool) -> dict[str, bool]:
    await world.ci_flow(res(NAMES[:2]))
    flow = await world.flow()
    ja = await world.job(flow, name="a")
    jb = await world.job(flow, name="b")
    await world.send(ja, res(NAMES[:2], **{NAMES[0]: "passed" if first_passes else "failed"}))
    await world.send(jb, res(NAMES[:2], **{NAMES[0]: "failed" if first_passes else "passed"}))
    await world.finish_job(ja)
    await world.finish_job(jb)
    await world.finish_flow(flow)
    ra, rb = await world.results(ja), await world.results(jb)
    return {"a": ra[NAMES[0]]["flaky"], "b": rb[NAMES[0]]["flaky"], "other": ra[NAMES[1]]["flaky"]}


async def test_flaky_same_commit_across_jobs(world: World) -> None:
    assert await _same_commit_two_jobs(world, True) == {"a": True, "b": True, "other": False}


async def test_flaky_same_commit_across_jobs_other_order(world: World) -> None:
    assert await _same_commit_two_jobs(world, False) == {"a": True, "b": True, "other": False}


async def test_other_environment_is_other_history(world: World) -> None:
    await world.ci_flow(res(NAMES[:2]), system="linux")
    _, jw = await world.ci_flow(res(NAMES[:2], **{NAMES[0]: "failed"}), system="windows")
    rw = await world.results(jw)
    assert rw[NAMES[0]]["change"] == "new"
    _, jl = await world.ci_flow(res(NAMES[:2], **{NAMES[0]: "failed"}), system="linux")
    assert (await world.results(jl))[NAMES[0]]["change"] == "regression"


async def test_history_found_beyond_latest_flow(world: World) -> None:
    await world.ci_flow(res(NAMES[:3]))
    await world.ci_flow(res(NAMES[:1]))  # tests 1 and 2 did not run
    _, j3 = await world.ci_flow(res(NAMES[:3], **{NAMES[1]: "failed"}))
    r3 = await world.results(j3)
    assert r3[NAMES[1]]["change"] == "regression"
    assert r3[NAMES[2]]["change"] == "none" and r3[NAMES[2]]["age"] == 1
    assert r3[NAMES[0]]["age"] == 2


async def test_skipped_between_does_not_hide_regression(world: World) -> None:
    await world.ci_flow(res(NAMES[:2]))
    _, j2 = await world.ci_flow(res(NAMES[:2], **{NAMES[0]: "skipped"}))
    assert (await world.results(j2))[NAMES[0]]["change"] == "none"
    _, j3 = await world.ci_flow(res(NAMES[:2], **{NAMES[0]: "failed"}))
    assert (await world.results(j3))[NAMES[0]]["change"] == "regression"


async def test_job_counters_kept_for_run_result(world: World) -> None:
    from kraken.models import Job

    flow = await world.flow()
    job = await world.job(flow)
    await world.send(job, res(NAMES, **{NAMES[0]: "failed", NAMES[1]: "error", NAMES[2]: "skipped"}), batch=7)
    async with world.db.session() as s:
        j = await s.get(Job, job)
        assert j is not None
        assert (j.tests_total, j.tests_failed) == (20, 2)


async def _scenario(world: World, in_order: bool) -> list[dict[str, dict[str, object]]]:
    """Three CI flows; the third one's job finishes before the second's (out of order)."""
    _, j1 = await world.ci_flow(res(NAMES[:6]))
    f2, f3 = await world.flow(), await world.flow()
    j2, j3 = await world.job(f2), await world.job(f3)
    await world.send(j2, res(NAMES[:6], **{NAMES[0]: "failed", NAMES[1]: "failed"}))
    await world.send(j3, res(NAMES[:6], **{NAMES[0]: "failed", NAMES[2]: "error"}))
    if in_order:
        await world.finish_job(j2)
        await world.finish_flow(f2)
        await world.finish_job(j3)
        await world.finish_flow(f3)
    else:
        await world.finish_job(j3)
        await world.finish_flow(f3)
        assert await world.results(j3) == {}  # waits for flow 2
        await world.finish_job(j2)
        assert await world.results(j3) == {}  # flow 2 is not completed yet
        await world.finish_flow(f2)
    out = [await world.results(j) for j in (j1, j2, j3)]
    for r in out:
        for v in r.values():
            v.pop("id")
    return out


async def test_out_of_order_completion_gives_the_same_answer(rdb: object) -> None:
    from kraken.core.db import Database

    assert isinstance(rdb, Database)
    a = await _scenario(await World(rdb).setup("in-order"), True)
    b = await _scenario(await World(rdb).setup("out-of-order"), False)
    assert a == b
    assert a[2][NAMES[0]]["change"] == "none" and a[2][NAMES[0]]["age"] == 1
    assert a[2][NAMES[1]]["change"] == "fix"
    assert a[2][NAMES[2]]["change"] == "regression"


async def test_dev_flow_compares_with_ci_and_leaves_history_alone(world: World) -> None:
    await world.ci_flow(res(NAMES[:4]))
    dev = await world.flow("dev")
    jd = await world.job(dev)
    await world.send(jd, res(NAMES[:4], **{NAMES[0]: "failed"}))
    await world.finish_job(jd)  # analysed at once: nothing to wait for
    rd = await world.results(jd)
    assert rd[NAMES[0]]["change"] == "regression"
    assert rd[NAMES[1]]["change"] == "none" and rd[NAMES[1]]["age"] == 1
    await world.complete_flow(dev)
    _, j2 = await world.ci_flow(res(NAMES[:4]))
    r2 = await world.results(j2)
    # the dev flow's failure is not CI history: no fix, and ages go on from CI flow 1
    assert r2[NAMES[0]]["change"] == "none" and r2[NAMES[0]]["age"] == 1
    assert r2[NAMES[1]]["age"] == 1


async def test_dev_flow_does_not_wait_for_running_ci_flow(world: World) -> None:
    await world.ci_flow(res(NAMES[:2]))
    running = await world.flow()
    jr = await world.job(running)
    await world.send(jr, res(NAMES[:2], **{NAMES[0]: "failed"}))
    await world.finish_job(jr)  # its flow is still running
    dev = await world.flow("dev")
    jd = await world.job(dev)
    await world.send(jd, res(NAMES[:2]))
    await world.finish_job(jd)
    rd = await world.results(jd)
    assert rd[NAMES[0]]["change"] == "none"  # compared with the completed CI flow 1 (passed)


async def test_analysis_is_idempotent(world: World) -> None:
    from kraken.results.analysis import analyze_job

    _, j = await world.ci_flow(res(NAMES))
    before = await world.results(j)
    await analyze_job(world.db, j)
    await analyze_job(world.db, j)
    assert await world.results(j) == before


async def test_performance_regression_and_improvement(world: World) -> None:
    def bench(value: float, duration: float = 2.0) -> list[list[object]]:
        return [["bench::sort", "passed", duration, None, {"ops_time": value}], ["t::fast", "passed", 0.01, None, None]]

    for v in (10.0, 10.4, 9.7, 10.1):
        _, j = await world.ci_flow(bench(v))
        assert (await world.results(j))["bench::sort"]["perf_change"] in (None, 0)
    _, j = await world.ci_flow(bench(15.0))
    r = (await world.results(j))["bench::sort"]
    assert r["perf_change"] == 1
    perf = r["perf"] if isinstance(r["perf"], dict) else __import__("orjson").loads(r["perf"])
    assert perf["changes"]["ops_time"]["kind"] == "regression"
    assert "duration" not in perf["changes"]
    _, j = await world.ci_flow(bench(10.0, duration=0.5))
    assert (await world.results(j))["bench::sort"]["perf_change"] in (None, 0)
    _, j = await world.ci_flow(bench(6.0))
    assert (await world.results(j))["bench::sort"]["perf_change"] == 2
    assert (await world.results(j))["t::fast"]["perf_change"] is None


async def test_issues_new_and_old_within_five_lines(world: World) -> None:
    import sqlalchemy as sa

    async def flow_with(issues: list[list[object]]) -> int:
        flow = await world.flow()
        job = await world.job(flow, name="lint", stage="lint")
        await world.send_issues(job, issues)
        await world.finish_job(job)
        await world.finish_flow(flow)
        return job

    await flow_with([["a.py", 10, 1, "F401", "unused import", "error"], ["b.py", 5, 1, "E501", "long", "convention"]])
    j2 = await flow_with(
        [
            ["a.py", 15, 1, "F401", "unused import", "error"],  # moved by 5 lines: old
            ["a.py", 30, 1, "F401", "unused import", "error"],  # new
            ["b.py", 5, 1, "W291", "trailing", "warning"],  # other symbol: new
            ["c.py", 10, 1, "F401", "unused import", "error"],  # other path: new
        ]
    )
    async with world.db.session() as s:
        rows = (
            await s.execute(
                sa.text("SELECT path, line, is_new, age FROM issue WHERE job_id = :j ORDER BY id"), {"j": j2}
            )
        ).all()
    assert [(p, ln, bool(n), a) for p, ln, n, a in rows] == [
        ("a.py", 15, False, 1),
        ("a.py", 30, True, 0),
        ("b.py", 5, True, 0),
        ("c.py", 10, True, 0),
    ]
    j3 = await flow_with([["a.py", 21, 1, "F401", "unused import", "error"]])  # 6 lines from 15: new
    async with world.db.session() as s:
        row = (await s.execute(sa.text("SELECT is_new FROM issue WHERE job_id = :j"), {"j": j3})).one()
    assert bool(row[0]) is True


async def test_many_results_in_batches(world: World) -> None:
    names = [f"suite.mod{i // 100}::test_{i}" for i in range(12000)]
    await world.ci_flow(res(names))
    flipped = {n: "failed" for n in names[::100]}
    _, j2 = await world.ci_flow(res(names, **flipped))
    r2 = await world.results(j2)
    assert len(r2) == 12000
    assert {n for n, r in r2.items() if r["change"] == "regression"} == set(flipped)


async def test_results_after_analysis_are_analysed_with_the_job(world: World) -> None:
    """Results that arrive after the job's analysis (a late message) join the same job: the summary
    counts every row and a rerun across the two batches is a same-commit flake."""
    import sqlalchemy as sa

    from kraken.models.results import ResultsJob
    from kraken.results.analysis import analyze_job

    await world.ci_flow(res(NAMES[:4]))
    flow = await world.flow()
    job = await world.job(flow)
    await world.send(job, res(NAMES[:3], **{NAMES[0]: "failed"}))
    await world.finish_job(job)
    assert len(await world.results(job)) == 3
    await world.send(job, [[NAMES[0], "passed", 0.02, None, None], [NAMES[3], "failed", 0.02, None, None]])
    await analyze_job(world.db, job)
    await world.finish_flow(flow)
    async with world.db.session() as s:
        rows = (
            await s.execute(
                sa.text("SELECT status, change, flaky, flaky_rule FROM test_result WHERE job_id = :j ORDER BY ord"),
                {"j": job},
            )
        ).all()
        rj = await s.get(ResultsJob, job)
    assert rj is not None
    assert [(r[0], r[1], bool(r[2]), r[3]) for r in rows] == [
        (1, 3, True, 1),  # NAMES[0] failed (a regression), then passed in the late batch: both flaky
        (0, 0, False, 0),
        (0, 0, False, 0),
        (0, 0, True, 1),
        (1, 3, False, 0),  # NAMES[3]: a regression of its own
    ]
    assert rj.staged == 0 and rj.analysed == 5
    assert rj.dup_count == 1  # one result of a test already seen in the job
    assert (rj.summary["total"], rj.summary["regressions"], rj.summary["flaky"]) == (5, 2, 2)


async def test_tests_created_meanwhile_by_another_analysis(world: World) -> None:
    """Another branch's analysis creating the same new tests at the same time (PostgreSQL: analyses
    of different branches run concurrently) must not make this one fail."""
    import asyncio

    import sqlalchemy as sa

    if world.db.is_sqlite:
        return  # one writer at a time: nothing can create tests meanwhile
    flow = await world.flow()
    job = await world.job(flow)
    await world.send(job, res(NAMES[:3]))
    await world.complete_job(job)
    async with world.db.engine.connect() as other:
        # the other analysis created NAMES[1] and has not committed yet
        await other.execute(
            sa.text("INSERT INTO test_case (project_id, name) VALUES (:p, :n)"),
            {"p": world.project_id, "n": NAMES[1]},
        )
        analysis = asyncio.create_task(world.finish_job(job))
        async with world.db.session() as s:
            # until this analysis waits for the other one's row
            while not (
                await s.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO test_case%'"
                    )
                )
            ).scalar():
                assert not analysis.done(), analysis
                await s.rollback()
        await other.commit()
    await analysis
    await world.finish_flow(flow)
    r = await world.results(job)
    assert sorted(r) == sorted(NAMES[:3])
    assert {v["change"] for v in r.values()} == {"new"}
    async with world.db.session() as s:
        assert (await s.execute(sa.text("SELECT count(*) FROM test_case"))).scalar() == 3
