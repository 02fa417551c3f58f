"""The OpenAPI description is good enough for a standard generator: a Python client generated
from the running server's /openapi.json by ``openapi-python-client`` logs in, makes a project,
a branch and a stage, runs a flow on a real agent and reads its result, jobs and log."""

from __future__ import annotations

import asyncio
import importlib
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import IN_CI
from tests.support.api import Api
from tests.support.procs import ADMIN_PASSWORD, Server, start_agent, wait_agent_connected

pytestmark = pytest.mark.e2e

STAGE = """
def stage(ctx):
    return {"jobs": [{"name": "hello", "steps": [{"tool": "shell", "cmd": "echo generated client says #{word}"}],
                      "environments": [{"system": "any", "agents_group": "all"}]}],
            "parameters": [{"name": "word", "type": "string", "default": "hi"}]}
"""


ROOT = Path(__file__).resolve().parents[2]


def generator() -> str:
    """The ``openapi-python-client`` command: in .venv-openapi (``scripts/setup.sh dev`` makes
    it: the generator pins an older typer than Kraken's), or on PATH."""
    own = ROOT / ".venv-openapi" / "bin" / "openapi-python-client"
    found = str(own) if own.exists() else shutil.which("openapi-python-client")
    if found is None:
        what = "openapi-python-client is missing: run 'bash scripts/setup.sh dev' (it makes .venv-openapi)"
        if IN_CI:
            pytest.fail(what)
        pytest.skip(what)
    return found


def generate(spec: Path, into: Path) -> str:
    """Generates the client package; returns its import name."""
    name = f"kraken_api_{uuid.uuid4().hex[:8]}"
    out = subprocess.run(
        [generator(), "generate", "--path", str(spec), "--meta", "none", "--output-path", str(into / name)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return name


async def test_a_generated_python_client_runs_a_flow(tmp_path: Path, server: Server, api: Api) -> None:
    spec = tmp_path / "openapi.json"
    spec.write_bytes((await api.http.get(server.url + "/openapi.json")).content)
    package = generate(spec, tmp_path)
    sys.path.insert(0, str(tmp_path))
    agent = start_agent(tmp_path, server.url, f"gen-agent-{uuid.uuid4().hex[:8]}")
    try:
        wait_agent_connected(agent)

        def mod(path: str) -> ModuleType:
            return importlib.import_module(f"{package}.{path}")

        models = mod("models")
        client_mod = mod("client")
        anonymous = client_mod.Client(base_url=server.url)
        token = mod("api.auth.login_api_auth_login_post").sync(
            client=anonymous, body=models.LoginIn(username="admin", password=ADMIN_PASSWORD)
        )
        assert isinstance(token, models.TokenOut), token
        client: Any = client_mod.AuthenticatedClient(base_url=server.url, token=token.access_token)

        project = mod("api.projects.create_project_api_projects_post").sync(
            client=client, body=models.ProjectIn(name=f"generated-{uuid.uuid4().hex[:6]}")
        )
        assert isinstance(project, models.ProjectOut), project
        branch = mod("api.projects.create_branch_api_projects_project_id_branches_post").sync(
            project.id, client=client, body=models.BranchIn(name="main", branch_name="main")
        )
        assert isinstance(branch, models.BranchOut), branch
        stage = mod("api.stages.create_stage_api_branches_branch_id_stages_post").sync(
            branch.id, client=client, body=models.StageIn(name="hello", schema_code=STAGE)
        )
        assert isinstance(stage, models.StageOut), stage

        args = models.FlowInArgs.from_dict({"word": "pear"})
        async with api.events() as queue:
            flow = mod("api.flows.create_flow_api_branches_branch_id_flows_post").sync(
                branch.id, client=client, body=models.FlowIn(args=args)
            )
            assert isinstance(flow, models.FlowOut), flow
            while True:
                kind, data = await asyncio.wait_for(queue.get(), 60)
                if kind == "flow" and data["id"] == flow.id and data["state"] == "completed":
                    break
        done = mod("api.flows.get_flow_api_flows_flow_id_get").sync(flow.id, client=client)
        assert isinstance(done, models.FlowOut)
        assert done.result == "passed", done
        jobs = mod("api.runs.list_jobs_api_runs_run_id_jobs_get").sync(done.runs[0].id, client=client)
        assert isinstance(jobs, list) and [j.result for j in jobs] == ["passed"]
        log = mod("api.runs.job_log_api_jobs_job_id_log_get").sync_detailed(jobs[0].id, client=client)
        assert log.status_code == 200 and b"generated client says pear" in log.content
    finally:
        agent.stop()
        sys.path.remove(str(tmp_path))
