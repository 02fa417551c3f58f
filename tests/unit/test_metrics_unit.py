"""The metrics endpoint's pieces: route templates, the token check, the controller/worker listener."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, FastAPI
from prometheus_client.parser import text_string_to_metric_families

from kraken.observability.endpoint import TimingMiddleware
from kraken.observability.exposition import authorized
from kraken.observability.listener import MetricsListener
from kraken.observability.metrics import HTTP_DURATION
from kraken.observability.settings import MetricsSettings


def _count(method: str, route: str, status: str) -> float:
    """The number of requests recorded for these labels (0 before the first)."""
    want = {"method": method, "route": route, "status": status}
    found = [
        s.value for m in HTTP_DURATION.collect() for s in m.samples if s.name.endswith("_count") and s.labels == want
    ]
    return sum(found)


async def test_requests_are_timed_by_their_full_route_template() -> None:
    app = FastAPI()
    inner = APIRouter()

    @inner.get("/things/{thing_id}")
    async def thing(thing_id: int) -> int:
        return thing_id

    @inner.get("/files/{rest:path}")
    async def files(rest: str) -> str:
        return rest

    outer = APIRouter(prefix="/unit-api")
    outer.include_router(inner)
    app.include_router(outer)
    app.add_middleware(TimingMiddleware)
    before = {
        k: _count(*k)
        for k in [
            ("GET", "/unit-api/things/{thing_id}", "200"),
            ("GET", "/unit-api/files/{rest:path}", "200"),
            ("GET", "unmatched", "404"),
        ]
    }
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/unit-api/things/41")).json() == 41
        assert (await client.get("/unit-api/things/42")).json() == 42
        assert (await client.get("/unit-api/files/a/b/c")).json() == "a/b/c"
        assert (await client.get("/no/such/path")).status_code == 404
    assert (
        _count("GET", "/unit-api/things/{thing_id}", "200") == before[("GET", "/unit-api/things/{thing_id}", "200")] + 2
    )
    assert (
        _count("GET", "/unit-api/files/{rest:path}", "200") == before[("GET", "/unit-api/files/{rest:path}", "200")] + 1
    )
    assert _count("GET", "unmatched", "404") == before[("GET", "unmatched", "404")] + 1


def test_token_check() -> None:
    assert authorized(None, None) and authorized("Bearer anything", None)
    assert authorized("Bearer s3cret", "s3cret") and authorized("bearer s3cret", "s3cret")
    assert not authorized(None, "s3cret")
    assert not authorized("Bearer s3cre", "s3cret")
    assert not authorized("Basic s3cret", "s3cret")


async def test_listener_serves_metrics_and_refuses_the_rest() -> None:
    listener = MetricsListener(MetricsSettings(port=0, token="tok"), "worker")
    await listener.start()
    try:
        base = f"http://127.0.0.1:{listener.port}"
        async with httpx.AsyncClient(base_url=base) as client:
            assert (await client.get("/metrics")).status_code == 401
            r = await client.get("/metrics", headers={"Authorization": "Bearer tok"})
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
            names = {f.name for f in text_string_to_metric_families(r.text)}
            assert {"kraken_build_info", "kraken_background_tasks", "kraken_event_loop_lag_seconds"} <= names
            assert (await client.get("/other", headers={"Authorization": "Bearer tok"})).status_code == 404
            assert (await client.post("/metrics", headers={"Authorization": "Bearer tok"})).status_code == 404
    finally:
        await listener.stop()


def test_docs_and_dashboard_name_only_metrics_that_exist() -> None:
    import json
    import re
    from pathlib import Path

    from kraken.observability.gauges import GAUGES, Reading
    from kraken.observability.metrics import REGISTRY

    saved = GAUGES.reading, GAUGES.read_at
    GAUGES.reading, GAUGES.read_at = saved[0] or Reading(), saved[1] or 1.0
    try:
        families = list(REGISTRY.collect())
    finally:
        GAUGES.reading, GAUGES.read_at = saved
    exported = {f.name + {"counter": "_total", "info": "_info"}.get(f.type, "") for f in families}
    exported = {n for n in exported if n.startswith("kraken_")}
    root = Path(__file__).resolve().parents[2]
    dashboard = json.loads((root / "docs" / "grafana-kraken.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    documented = (root / "docs" / "metrics.md").read_text()
    named = {re.sub(r"_(bucket|count|sum)$", "", n) for n in re.findall(r"\bkraken_[a-z_]+", exprs + " " + documented)}
    assert named == exported, (named - exported, exported - named)  # nothing unknown named, nothing undocumented


async def test_a_failed_task_is_counted_and_kept_with_its_error_and_log() -> None:
    from kraken.observability import journal
    from kraken.observability.metrics import TASKS
    from kraken.workers import registry
    from kraken.workers.queue import InProcessQueue

    async def unit_failing_task(ctx: object, n: int) -> None:
        raise ValueError(f"broken input {n}")

    journal.start("serve")
    registry.tasks()  # loads the real tasks first
    registry._TASKS["unit_failing_task"] = unit_failing_task
    queue = InProcessQueue()
    queue.bind(object())  # type: ignore[arg-type]
    before = TASKS.labels("unit_failing_task", "failed")._value.get()
    try:
        await queue.enqueue("unit_failing_task", n=7)
        await queue.drain()
    finally:
        registry._TASKS.pop("unit_failing_task")
    assert TASKS.labels("unit_failing_task", "failed")._value.get() == before + 1
    snap = journal.JOURNAL.snapshot()
    failure = snap["task_failures"][0]
    assert failure["task"] == "unit_failing_task" and failure["error"] == "ValueError: broken input 7"
    assert snap["tasks"]["unit_failing_task"]["failed"] >= 1
    logged = snap["errors"][0]
    assert logged["logger"] == "kraken.workers.queue" and "broken input 7" in logged["message"]


async def test_scrape_survives_an_unreachable_database() -> None:
    import pytest

    from kraken.core.db import Database
    from kraken.observability.gauges import DatabaseGauges

    gauges = DatabaseGauges()
    assert [f.name for f in gauges.collect() if f.name == "kraken_database_up"] == []  # not a database role yet
    db = Database("postgresql+asyncpg://postgres@127.0.0.1:1/nothing-listens-here")
    try:
        with pytest.raises(OSError):
            await gauges.refresh(db, 20.0)
    finally:
        await db.dispose()
    [up] = [f for f in gauges.collect() if f.name == "kraken_database_up"]
    assert up.samples[0].value == 0
