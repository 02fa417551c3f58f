"""A small async client of Kraken's REST API for tests, with waiting on the live event stream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import orjson

from tests.support.procs import ADMIN_PASSWORD


class Api:
    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")
        self.http = httpx.AsyncClient(base_url=self.base + "/api", timeout=30)
        self.token: str | None = None

    async def login(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> None:
        r = await self.http.post("/auth/login", json={"username": username, "password": password})
        r.raise_for_status()
        self.token = r.json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {self.token}"

    async def close(self) -> None:
        await self.http.aclose()

    async def get(self, path: str, **kw: Any) -> Any:
        r = await self.http.get(path, **kw)
        r.raise_for_status()
        return r.json()

    async def post(self, path: str, body: Any = None, expect: int | None = None) -> Any:
        r = await self.http.post(path, json=body)
        if expect is not None:
            assert r.status_code == expect, f"{path}: {r.status_code} {r.text}"
        else:
            r.raise_for_status()
        return r.json()

    async def project_with_branch(self, name: str = "p") -> tuple[int, int]:
        project = await self.post("/projects", {"name": name}, expect=201)
        branch = await self.post(f"/projects/{project['id']}/branches", {"name": "main", "branch_name": "main"}, 201)
        return project["id"], branch["id"]

    async def stage(self, branch_id: int, name: str, code: str) -> dict[str, Any]:
        return await self.post(f"/branches/{branch_id}/stages", {"name": name, "schema_code": code}, expect=201)  # type: ignore[no-any-return]

    async def flow(self, branch_id: int, kind: str = "ci", args: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.post(f"/branches/{branch_id}/flows", {"kind": kind, "args": args or {}}, expect=201)  # type: ignore[no-any-return]

    @contextlib.asynccontextmanager
    async def events(self) -> AsyncIterator[asyncio.Queue[tuple[str, Any]]]:
        """Subscribe to /api/events; yields a queue of (event, data) once subscribed."""
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        ready = asyncio.Event()

        async def reader() -> None:
            async with httpx.AsyncClient(base_url=self.base + "/api", timeout=None) as client:
                headers = {"Authorization": f"Bearer {self.token}"}
                async with client.stream("GET", "/events", headers=headers) as resp:
                    event = "message"
                    async for line in resp.aiter_lines():
                        if line.startswith("event: "):
                            event = line[7:]
                        elif line.startswith("data: "):
                            if event == "hello":
                                ready.set()
                            await queue.put((event, orjson.loads(line[6:])))

        task = asyncio.create_task(reader())
        try:
            await asyncio.wait_for(ready.wait(), 15)
            yield queue
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def wait_until(
        self, check: Callable[[], Awaitable[Any]], timeout: float = 60.0, what: str = "condition"
    ) -> Any:
        """Re-check after every live event (and at the start) until check() returns a truthy value."""
        async with self.events() as queue:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while True:
                value = await check()
                if value:
                    return value
                left = deadline - loop.time()
                if left <= 0:
                    raise TimeoutError(f"{what} not reached within {timeout}s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(queue.get(), min(left, 5.0))
                    while not queue.empty():
                        queue.get_nowait()

    async def wait_flow(self, flow_id: int, timeout: float = 60.0) -> dict[str, Any]:
        async def done() -> dict[str, Any] | None:
            flow = await self.get(f"/flows/{flow_id}")
            return flow if flow["state"] == "completed" else None

        return await self.wait_until(done, timeout, f"flow {flow_id} completed")  # type: ignore[no-any-return]

    async def jobs(self, run_id: int) -> list[dict[str, Any]]:
        return await self.get(f"/runs/{run_id}/jobs")  # type: ignore[no-any-return]

    async def log(self, job_id: int) -> str:
        r = await self.http.get(f"/jobs/{job_id}/log")
        r.raise_for_status()
        return r.text
