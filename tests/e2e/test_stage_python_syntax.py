"""Python-isms in stage code through a real server and agent: saved and run with Python's meaning,
or refused on save with a 422 naming the construct and its line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api import Api
from tests.support.procs import Proc, Server, start_agent, wait_agent_connected

pytestmark = pytest.mark.e2e

PYTHONIC = """def stage(ctx):
\tcount = 0
\twhile count < 2 ** 3:
\t\tcount += 1
\tseen = {c % 3 for c in range(count)}
\ttry:
\t\tlabel = f"n{count * 2}-{len(seen)}"
\texcept KeyError:
\t\tlabel = "never"
\treturn {
\t\t"parent": "root", "triggers": {"parent": True},
\t\t"jobs": [{"name": "j", "environments": [{"system": "any"}],
\t\t          "steps": [{"tool": "shell", "cmd": "echo computed=" + label}]}],
\t}
"""

CLASS = """def stage(ctx):
    jobs = []

    class Job:
        pass
    return {"jobs": jobs}
"""


@pytest.fixture
def agent(tmp_path: Path, server: Server) -> Iterator[Proc]:
    proc = start_agent(tmp_path, server.url, "pysyntax-agent")
    yield proc
    proc.stop()


async def test_python_constructs_saved_and_run(agent: Proc, api: Api) -> None:
    _, branch_id = await api.project_with_branch()
    await api.stage(branch_id, "py", PYTHONIC)
    wait_agent_connected(agent)
    flow = await api.wait_flow((await api.flow(branch_id))["id"])
    [job] = await api.jobs(flow["runs"][0]["id"])
    log = await api.log(job["id"])
    assert job["result"] == "passed" and "computed=n16-3" in log, (job, log)


async def test_unsupported_construct_refused_on_save_with_its_line(api: Api) -> None:
    _, branch_id = await api.project_with_branch()
    r = await api.http.post(f"/branches/{branch_id}/stages", json={"name": "c", "schema_code": CLASS})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail["line"] == 4 and "'class' is not available in stage code" in detail["message"], detail
    bad_while = "def stage(ctx):\n    i = 0\n    while i < 3:\n        i += 1\n    return {'jobs': nope}\n"
    r = await api.http.post(f"/branches/{branch_id}/stages", json={"name": "w", "schema_code": bad_while})
    assert r.status_code == 422, r.text
    assert r.json()["detail"]["line"] == 5 and "'nope'" in r.json()["detail"]["message"], r.text
    assert await api.get(f"/branches/{branch_id}/stages") == []  # nothing was stored
