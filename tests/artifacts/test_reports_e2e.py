"""HTML reports from the artifacts tool's ``report_entry``, through real server and agent
processes: served from their own path with a sandboxing CSP, nosniff and their types; no path
out of the report's directory; a stream token in the path for the report's relative links; a
user without access to the project gets 404; a ``report_entry`` naming no uploaded file fails
its step, named."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.api import Api
from tests.support.procs import Server, start_agent, wait_agent_connected

pytestmark = pytest.mark.e2e

INDEX = "<html><head><link rel=stylesheet href=style.css></head><body><a href=sub/page.html>more</a></body></html>"
STAGE = """
def stage(ctx):
    return {"jobs": [
        {"name": "report", "steps": [
            {"tool": "shell", "script": "\\n".join([
                "mkdir -p out/cov/sub",
                "printf '%s' 'INDEX' > out/cov/index.html",
                "printf 'body{color:red}' > out/cov/style.css",
                "printf '<p>page</p>' > out/cov/sub/page.html",
                "printf 'not part of the report' > out/secret.txt",
            ])},
            {"tool": "artifacts", "source": "**", "cwd": "out", "destination": "r", "report_entry": "cov/index.html"},
        ], "environments": [{"system": "any"}]},
        {"name": "bad-entry", "steps": [
            {"tool": "shell", "cmd": "echo x > a.txt"},
            {"tool": "artifacts", "source": "a.txt", "report_entry": "index.html"},
        ], "environments": [{"system": "any"}]},
    ]}
""".replace("INDEX", INDEX)


async def test_report_served_sandboxed_and_confined(tmp_path: Path, server: Server, api: Api) -> None:
    agent = start_agent(tmp_path, server.url, "reports-agent")
    try:
        _, branch_id = await api.project_with_branch("reports")
        await api.stage(branch_id, "s", STAGE)
        wait_agent_connected(agent)
        flow = await api.wait_flow((await api.flow(branch_id))["id"], timeout=120)
        run_id = flow["runs"][0]["id"]
        jobs = {j["name"]: j for j in await api.jobs(run_id)}
        assert jobs["report"]["result"] == "passed", jobs["report"]
        bad_step = jobs["bad-entry"]["steps"][1]
        assert bad_step["result"] == "error"
        assert "report_entry 'index.html' is not among the files uploaded" in bad_step["message"]

        arts = {a["path"]: a for a in await api.get(f"/runs/{run_id}/artifacts")}
        assert [p for p, a in arts.items() if a["report_entry"]] == ["r/cov/index.html"]
        entry = arts["r/cov/index.html"]["id"]
        base = f"/runs/{run_id}/reports/{entry}/-"

        r = await api.http.get(f"{base}/index.html")
        assert r.status_code == 200 and r.text == INDEX
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        csp = r.headers["content-security-policy"]
        assert csp.startswith("sandbox ") and "allow-same-origin" not in csp and "default-src 'self'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["content-disposition"] == "inline"
        css = await api.http.get(f"{base}/style.css")
        assert css.text == "body{color:red}" and css.headers["content-type"].startswith("text/css")
        assert (await api.http.get(f"{base}/sub/page.html")).text == "<p>page</p>"

        # nothing outside the report's directory, however the path is spelled
        for path in ("../secret.txt", "sub/../../secret.txt", "..%2Fsecret.txt", "%2E%2E/secret.txt"):
            r = await api.http.get(httpx.URL(f"{server.url}/api{base}/{path}"))
            assert r.status_code in (400, 404), (path, r.status_code)
            assert "not part of the report" not in r.text
        r = await api.http.get(f"{base}/..%2Fsecret.txt")
        assert r.status_code == 400 and "'..' is not allowed" in r.json()["detail"]
        assert (await api.http.get(f"{base}/missing.html")).status_code == 404
        # an artifact that is not a report entry, or a report of another run, is no report
        other = arts["r/secret.txt"]["id"]
        assert (await api.http.get(f"/runs/{run_id}/reports/{other}/-/secret.txt")).status_code == 404
        assert (await api.http.get(f"/runs/{run_id + 1000}/reports/{entry}/-/index.html")).status_code == 404

        # a browser's new tab: the short-lived download token in the path, kept by relative links
        stream = await api.post("/auth/stream-token", {"purpose": "download"})
        async with httpx.AsyncClient(base_url=server.url + "/api", timeout=30) as anon:
            path = f"/runs/{run_id}/reports/{entry}/{stream['token']}"
            assert (await anon.get(f"{path}/index.html")).text == INDEX
            assert (await anon.get(f"{path}/sub/page.html")).status_code == 200
            assert (await anon.get(f"/runs/{run_id}/reports/{entry}/-/index.html")).status_code == 401
            login = f"/runs/{run_id}/reports/{entry}/{api.token}/index.html"
            r = await anon.get(login)
            assert r.status_code == 401 and "never in the address" in r.json()["detail"]
            events = await api.post("/auth/stream-token", {"purpose": "events"})
            r = await anon.get(f"/runs/{run_id}/reports/{entry}/{events['token']}/index.html")
            assert r.status_code == 401 and "'download'" in r.json()["detail"]

        # a user who is not a member of the private project does not learn the report exists
        await api.post("/users", {"username": "report-outsider", "password": "outsider-password-1"}, expect=201)
        outsider = Api(server.url)
        try:
            await outsider.login("report-outsider", "outsider-password-1")
            r = await outsider.http.get(f"{base}/index.html")
            assert r.status_code == 404
        finally:
            await outsider.close()
    finally:
        agent.stop()
