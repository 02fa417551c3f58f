"""A real ``kraken serve`` with the OpenSearch log store, against ``osmem-server`` (an in-memory
OpenSearch emulator: a real OpenSearch cannot be installed on the test machines), and its local
agent running a job that prints in phases.

- The emulator is stopped (SIGSTOP: every request hangs, as with a stalled cluster) in the middle
  of the job, which goes on printing and ends; its log is read whole meanwhile (from the
  database); once the emulator runs again, every line is in OpenSearch exactly once.
- The emulator is killed in the middle of a job and started again on the same port (empty: the
  emulator keeps nothing on disk): every line reaches it, once.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opensearchpy import AsyncOpenSearch

from tests.support.api import Api
from tests.support.opensearch_emulator import OpenSearchEmulator
from tests.support.procs import Server

pytestmark = pytest.mark.e2e

STAGE = """
def stage(ctx):
    cmd = ("while [ ! -f {go1} ]; do sleep 0.05; done; for i in $(seq 1 {n}); do echo phase1 line $i; done; "
           "while [ ! -f {go2} ]; do sleep 0.05; done; for i in $(seq 1 {n}); do echo phase2 line $i; done")
    job = {{"name": "j", "steps": [{{"tool": "shell", "cmd": cmd}}], "environments": [{{"system": "any"}}]}}
    return {{"jobs": [job]}}
"""
N = 400


@pytest.fixture
def emulator() -> Iterator[OpenSearchEmulator]:
    em = OpenSearchEmulator()
    em.start()
    try:
        yield em
    finally:
        em.stop()


async def documents(url: str, prefix: str, job_id: int) -> list[dict[str, Any]]:
    # 30 s: the emulator shares two loaded cores with the server that writes to it
    client = AsyncOpenSearch(hosts=[url], timeout=30, max_retries=0)
    try:
        await client.indices.refresh(index=f"{prefix}-*", ignore_unavailable=True)
        found = await client.search(
            index=f"{prefix}-*",
            body={"query": {"term": {"job_id": job_id}}, "size": 10000, "sort": [{"line_no": "asc"}]},
            ignore_unavailable=True,
        )
        return [h["_source"] for h in found["hits"]["hits"]]
    finally:
        await client.close()


async def eventually(check: Any, timeout: float, what: str) -> Any:
    """OpenSearch sends no event when it took lines in: poll it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout}s")
        await asyncio.sleep(0.2)


def log_lines(text: str) -> list[str]:
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")


@pytest.fixture
def gate() -> Iterator[Path]:
    """Where the job waits for its go files: a directory the job user (the agent runs jobs as
    another user when the tests run as root) can look into, unlike pytest's tmp_path."""
    path = Path(tempfile.mkdtemp(prefix="kraken-gate-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def run_job(gate: Path, api: Api) -> tuple[int, int, Path, Path]:
    go1, go2 = gate / "go1", gate / "go2"
    await api.login()
    _, branch_id = await api.project_with_branch()
    await api.stage(branch_id, "s", STAGE.format(go1=go1, go2=go2, n=N))
    flow = await api.flow(branch_id)

    async def running() -> int | None:
        got = await api.get(f"/flows/{flow['id']}")
        if not got["runs"]:
            return None
        jobs = await api.jobs(got["runs"][0]["id"])
        return jobs[0]["id"] if jobs and jobs[0]["state"] == "running" else None

    job_id = await api.wait_until(running, 60, "the job running")
    return flow["id"], job_id, go1, go2


def serve(tmp_path: Path, database_url: str, em: OpenSearchEmulator, prefix: str) -> Server:
    return Server(
        tmp_path,
        database_url=database_url,
        local_agent=True,
        KRAKEN_LOGS_STORE="opensearch",
        KRAKEN_OPENSEARCH_URL=em.url,
        KRAKEN_OPENSEARCH_INDEX_PREFIX=prefix,
        KRAKEN_LOG_INDEX_INTERVAL="0.2",
    )


async def test_opensearch_stalled_mid_job_loses_nothing(
    tmp_path: Path, database_url: str, emulator: OpenSearchEmulator, gate: Path
) -> None:
    prefix = f"kl-{tmp_path.name.lower()[-20:]}"
    server = serve(tmp_path, database_url, emulator, prefix)
    api = Api(server.url)
    try:
        flow_id, job_id, go1, go2 = await run_job(gate, api)
        go1.touch()

        async def phase1_indexed() -> bool:
            docs = await documents(emulator.url, prefix, job_id)
            return sum(d["text"].startswith("phase1 line") for d in docs) == N

        await eventually(phase1_indexed, 60, "phase 1 in OpenSearch")
        emulator.pause()  # mid-job: OpenSearch hangs
        try:
            go2.touch()
            await api.wait_flow(flow_id, 90)
            text = await api.log(job_id)  # readable while OpenSearch does not answer
            lines = log_lines(text)
            assert [ln for ln in lines if ln.startswith("phase")] == [f"phase1 line {i}" for i in range(1, N + 1)] + [
                f"phase2 line {i}" for i in range(1, N + 1)
            ]
        finally:
            emulator.resume()

        async def all_indexed() -> list[dict[str, Any]] | None:
            docs = await documents(emulator.url, prefix, job_id)
            return docs if len(docs) >= len(lines) else None

        docs = await eventually(all_indexed, 90, "every line in OpenSearch")
        assert [d["line_no"] for d in docs] == list(range(len(lines)))  # each line once, none missing
        assert [d["text"] for d in docs] == lines
        found = await api.get("/logs/search", params={"q": f'"phase2 line {N}"', "job_id": job_id})
        assert [h["line"] for h in found["hits"]] == [lines.index(f"phase2 line {N}")]
    finally:
        await api.close()
        server.stop()


async def test_opensearch_restarted_mid_job_gets_every_line_once(
    tmp_path: Path, database_url: str, emulator: OpenSearchEmulator, gate: Path
) -> None:
    prefix = f"kr-{tmp_path.name.lower()[-20:]}"
    server = serve(tmp_path, database_url, emulator, prefix)
    api = Api(server.url)
    try:
        flow_id, job_id, go1, go2 = await run_job(gate, api)
        before = log_lines(await api.log(job_id))
        assert not any(ln.startswith("phase") for ln in before)
        emulator.kill()  # mid-job, before it got any of the job's lines (it would forget them)
        go1.touch()
        go2.touch()
        await api.wait_flow(flow_id, 90)
        lines = log_lines(await api.log(job_id))
        assert len([ln for ln in lines if ln.startswith("phase")]) == 2 * N
        emulator.start()  # the same port again

        async def all_indexed() -> list[dict[str, Any]] | None:
            docs = await documents(emulator.url, prefix, job_id)
            return docs if len(docs) >= len(lines) else None

        docs = await eventually(all_indexed, 120, "every line in OpenSearch")  # after the indexer's pause (<= 60 s)
        assert [d["line_no"] for d in docs] == list(range(len(lines)))
        assert [d["text"] for d in docs] == lines
    finally:
        await api.close()
        server.stop()
