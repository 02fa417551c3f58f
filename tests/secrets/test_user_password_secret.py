"""User-password secrets (the original's ``#{KK_SECRET_USER_NAME}`` / ``#{KK_SECRET_PASSWORD_NAME}``)
through a real server and agent: both syntaxes reach the step, the password never leaves the
server in an answer and shows as ``******`` in the log; a reference to a part the secret's kind
lacks errors the run naming the step's field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api import Api
from tests.support.procs import Proc, Server, start_agent, wait_agent_connected

pytestmark = pytest.mark.e2e

PASSWORD = "pw-Hunter2-x9"

STAGE = """
def stage(ctx):
    return {
        "jobs": [{
            "name": "login",
            "steps": [
                {"tool": "shell",
                 "cmd": "echo user=$U1/$U2 pw=$P1; p=pw-Hunter2; " +
                        "test \\"$P1\\" = ${p}-x9 && test \\"$P2\\" = \\"$P1\\" && echo password-ok",
                 "env": {"U1": "#{secrets.creds.user}", "U2": "#{KK_SECRET_USER_creds}",
                         "P1": "#{secrets.creds.password}", "P2": "#{KK_SECRET_PASSWORD_creds}"}},
            ],
            "environments": [{"system": "any"}],
        }],
    }
"""


@pytest.fixture
def agent(tmp_path: Path, server: Server) -> Iterator[Proc]:
    proc = start_agent(tmp_path, server.url, "user-password-agent")
    yield proc
    proc.stop()


def _bad(reference: str) -> str:
    return (
        "def stage(ctx):\n"
        '    return {"jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "true", '
        f'"env": {{"X": "{reference}"}}}}], "environments": [{{"system": "any"}}]}}]}}\n'
    )


async def test_user_password_secret_reaches_the_step_masked(agent: Proc, api: Api) -> None:
    project_id, branch_id = await api.project_with_branch()
    body = {"name": "creds", "kind": "user-password", "user": "deployer", "password": PASSWORD}
    created = await api.post(f"/projects/{project_id}/secrets", body, expect=201)
    assert (created["kind"], created["user"], created["password"]) == ("user-password", "deployer", "******")
    assert "value" not in created and "key" not in created
    await api.post(f"/projects/{project_id}/secrets", {"name": "plain", "value": "plain-value-1"}, expect=201)
    # the fields of another kind, or a missing part, are refused
    for bad in (
        {"name": "b1", "kind": "user-password", "user": "u"},
        {"name": "b2", "kind": "user-password", "user": "u", "password": "p", "key": "k"},
        {"name": "b3", "value": "v", "password": "p"},
    ):
        r = await api.http.post(f"/projects/{project_id}/secrets", json=bad)
        assert r.status_code == 422, (bad, r.text)
    r = await api.http.put(f"/secrets/{created['id']}", json={"key": "k"})
    assert r.status_code == 422 and "user-password secret has no 'key'" in r.text, r.text
    for url in (f"/secrets/{created['id']}", f"/projects/{project_id}/secrets"):
        r = await api.http.get(url)
        assert r.status_code == 200 and PASSWORD not in r.text, r.text

    await api.stage(branch_id, "s", STAGE)
    wait_agent_connected(agent)
    flow = await api.wait_flow((await api.flow(branch_id))["id"])
    [job] = await api.jobs(flow["runs"][0]["id"])
    log = await api.log(job["id"])
    assert job["result"] == "passed", (job, log)
    assert "user=deployer/deployer pw=******" in log and "password-ok" in log, log
    assert PASSWORD not in log and PASSWORD not in (await api.http.get(f"/runs/{flow['runs'][0]['id']}/jobs")).text

    # an update of the password only reaches the next job, still masked
    r = await api.http.put(f"/secrets/{created['id']}", json={"password": "pw-Hunter2-x9"})
    assert r.status_code == 200 and r.json()["password"] == "******" and r.json()["user"] == "deployer", r.text

    # parts the secret's kind does not have: the run is an error naming the step's field
    cases = [
        ("#{secrets.creds}", "field 'env.X': the secret 'creds' is a user-password secret: it needs a part"),
        ("#{secrets.creds.key}", "field 'env.X': the secret 'creds' is a user-password secret: it has no part 'key'"),
        ("#{KK_SECRET_SIMPLE_creds}", "the secret 'creds' is a user-password secret: it has no part 'value'"),
        ("#{KK_SECRET_PASSWORD_plain}", "'env.X': the secret 'plain' is a simple secret: it has no part 'password'"),
    ]
    for i, (reference, message) in enumerate(cases):
        stage = await api.stage(branch_id, f"bad{i}", _bad(reference))
        flow = await api.wait_flow((await api.flow(branch_id))["id"])
        [run] = [r for r in flow["runs"] if r["stage_name"] == f"bad{i}"]
        assert run["result"] == "error" and message in run["reason"], (reference, run["reason"])
        assert "job 'j' step 0" in run["reason"], run["reason"]
        r = await api.http.delete(f"/stages/{stage['id']}")
        assert r.status_code == 204, r.text
