"""Bad input gets a clear 4xx, never a 500: ids beyond their column's bits, broken JSON, huge bodies, login
guessing; and the server's answers carry security headers and say nothing about the machine."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import statistics
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.api import Api
from tests.support.procs import Server

pytestmark = pytest.mark.e2e

BIG = str(2**63)  # beyond 64 bits: overflowed in the database driver
HUGE = "9" * 30
ID32 = str(2**31)  # ids are 32-bit in PostgreSQL


async def test_ids_out_of_range_get_422_naming_the_parameter(api: Api) -> None:
    _, branch_id = await api.project_with_branch()
    # run 1 exists, so that the caller may see it: an unknown run is a 404 before its parameters are read
    code = (
        'def stage(ctx):\n    return {"jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "true"}], '
        '"environments": [{"system": "any"}]}]}\n'
    )
    await api.stage(branch_id, "s", code)
    assert (await api.flow(branch_id))["runs"][0]["id"] == 1
    probes: list[tuple[str, str, dict[str, object] | None, str]] = []
    for n in (ID32, BIG, HUGE):
        probes += [
            ("GET", f"/jobs/{n}", None, "job_id"),
            ("GET", f"/flows/{n}", None, "flow_id"),
            ("GET", f"/runs/{n}/results", None, "run_id"),
            ("GET", f"/runs/1/results?job_id={n}", None, "job_id"),
            ("POST", f"/branches/{n}/flows", {"kind": "ci"}, "branch_id"),
            ("GET", f"/test-cases/{n}/comments?branch_id={branch_id}", None, "test_case_id"),
            ("POST", f"/test-cases/{n}/comments", {"branch_id": branch_id, "text": "x"}, "test_case_id"),
            ("GET", f"/branches/{n}/retention", None, "branch_id"),
            ("PUT", f"/branches/{n}/retention", {"keep_flows": 1}, "branch_id"),
            ("GET", f"/branches/{branch_id}/flows?offset={n}", None, "offset"),
            ("GET", f"/jobs/1/log/stream?after={n}", None, "after"),
        ]
    for method, path, body, name in probes:
        r = await api.http.request(method, path, json=body)
        assert r.status_code == 422, f"{method} {path}: {r.status_code} {r.text}"
        assert r.json()["detail"][0]["loc"][-1] == name, f"{method} {path}: {r.text}"
    # the caller's role is checked first: a test case that does not exist (or that the caller may not
    # see) is a 404 whatever else the request holds
    for method, path, body in (
        ("GET", f"/test-cases/1/comments?branch_id={BIG}", None),
        ("POST", "/test-cases/1/comments", {"branch_id": int(BIG), "text": "x"}),
    ):
        r = await api.http.request(method, path, json=body)
        assert r.status_code == 404 and "test case 1 not found" in r.text, f"{method} {path}: {r.text}"
    # the largest id is valid input, for an object that does not exist
    assert (await api.http.get(f"/jobs/{2**31 - 1}")).status_code == 404
    assert (await api.http.get(f"/jobs/{2**31 - 1}/log/stream?after={2**31 - 1}")).status_code == 404


async def test_every_integer_parameter_is_bounded(api: Api) -> None:
    """Fixed once for every route: no integer path or query parameter without bounds."""
    spec = (await api.http.get(api.base + "/openapi.json")).json()
    unbounded = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for p in op.get("parameters", []):
                schemas = p["schema"].get("anyOf", [p["schema"]])
                for s in schemas:
                    if s.get("type") == "integer" and ("maximum" not in s or "minimum" not in s):
                        unbounded.append(f"{method} {path} {p['name']}")
    assert unbounded == []


async def test_retention_rules_are_bounded(api: Api) -> None:
    _, branch_id = await api.project_with_branch()
    for body, key in (({"keep_days": 1e308}, "keep_days"), ({"keep_flows": 10**12}, "keep_flows")):
        r = await api.http.put(f"/branches/{branch_id}/retention", json=body)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", key], r.text
    ok = await api.http.put(f"/branches/{branch_id}/retention", json={"keep_days": 30})
    assert ok.status_code == 200 and ok.json()["keep_days"] == 30


async def test_broken_json_gets_422_saying_where(api: Api) -> None:
    headers = {"content-type": "application/json"}
    cases = {
        b'{"name": "\\ud800"}': "surrogate",  # a lone surrogate: not Unicode, cannot be stored or echoed
        b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}": "depth",
        b'{"name": NaN}': "expected",
    }
    for body, word in cases.items():
        for sent_headers in (headers, {}):  # without a content type the body is read as JSON too
            r = await api.http.post("/projects", content=body, headers=sent_headers)
            assert r.status_code == 422, f"{body[:30]!r}: {r.status_code} {r.text[:300]}"
            detail = r.json()["detail"][0]
            assert detail["loc"][0] == "body" and word in detail["msg"], r.text
    # NUL: PostgreSQL cannot store it in text
    r = await api.http.post("/projects", content=b'{"name": "a\\u0000b", "description": "x"}', headers=headers)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "name"], r.text
    r = await api.http.get("/runs/1/results?q=a%00b")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query"], r.text
    # a valid surrogate pair is an ordinary character
    r = await api.http.post("/projects", content=b'{"name": "\\ud83d\\ude00"}', headers=headers)
    assert r.status_code == 201 and r.json()["name"] == "\U0001f600"
    assert [p["name"] for p in await api.get("/projects")] == ["\U0001f600"]


async def test_bodies_are_capped_before_they_are_read(api: Api) -> None:
    big = b'{"name": "' + b"x" * (2 << 20) + b'"}'
    r = await api.http.post("/projects", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "1048576" in r.json()["detail"], r.text

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while it arrives
        for _ in range(40):
            yield b" " * 65536

    r = await api.http.post("/projects", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413, r.text
    # before authentication too
    r = await httpx.AsyncClient().post(api.base + "/api/projects", content=big)
    assert r.status_code == 413
    assert [p["name"] for p in await api.get("/projects")] == []


async def test_security_headers_and_anonymous_health(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        health = await http.get("/api/health")
        assert health.json() == {"status": "ok", "role": "serve"}
        page = await http.get("/flows/1")
        assert page.status_code == 200
        for r in (health, page):
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["x-frame-options"] == "DENY"
        csp = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp and "object-src 'none'" in csp
        # the page's own inline scripts (the theme, before the first paint) are allowed by their hash
        for script in re.findall(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", page.text, re.S):
            digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in csp


async def test_login_is_rate_limited_with_backoff(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url + "/api") as http:
        for _ in range(5):
            r = await http.post("/auth/login", json={"username": "admin", "password": "wrong"})
            assert r.status_code == 401
        r = await http.post("/auth/login", json={"username": "admin", "password": "wrong"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1, r.text
        # the right password waits too (else guessing would go on), another user does not
        right = await http.post("/auth/login", json={"username": "admin", "password": "test-admin-pw"})
        assert right.status_code == 429
        assert (await http.post("/auth/login", json={"username": "eve", "password": "x"})).status_code == 401
        await asyncio.sleep(int(r.headers["retry-after"]))  # the backoff itself is what is tested
        right = await http.post("/auth/login", json={"username": "admin", "password": "test-admin-pw"})
        assert right.status_code == 200


async def test_unknown_users_take_as_long_as_wrong_passwords(server: Server) -> None:
    async def timed(username: str) -> float:
        start = time.perf_counter()
        r = await http.post("/auth/login", json={"username": username, "password": "wrong"})
        assert r.status_code == 401
        return time.perf_counter() - start

    async with httpx.AsyncClient(base_url=server.url + "/api") as http:
        known = [await timed("admin") for _ in range(3)]
        unknown = [await timed(f"nobody{i}") for i in range(3)]
    # argon2 makes a check cost tens of milliseconds; without the decoy check an unknown user costs ~1 ms
    assert statistics.median(unknown) > 0.4 * statistics.median(known), (known, unknown)
