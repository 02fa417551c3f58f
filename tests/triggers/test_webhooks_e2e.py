"""Signed webhook deliveries to a real server: GitHub, GitLab, Gitea/Forgejo pushes and pull
requests start flows with the commit and request recorded and offered to the stage as ctx."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

import httpx
import pytest

from tests.support.api import Api
from tests.support.procs import Server

pytestmark = pytest.mark.e2e

SECRET = "webhook-secret-123"
SHA = "a" * 40

HOOKED = """
def stage(ctx):
    return {
        "triggers": {"webhook": True},
        "jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "echo commit=%s pr=%s" % (
                      ctx.trigger.get("commit"), ctx.trigger.get("pull_request", {}).get("number"))}],
                  "environments": [{"system": "any"}]}],
    }
"""

CHILD = """
def stage(ctx):
    return {"parent": "hooked", "triggers": {"parent": True, "webhook": True},
            "jobs": [{"name": "c", "steps": [{"tool": "shell", "cmd": "true"}], "environments": [{"system": "any"}]}]}
"""

MANUAL = """
def stage(ctx):
    return {"jobs": [{"name": "m", "steps": [{"tool": "shell", "cmd": "true"}], "environments": [{"system": "any"}]}]}
"""


def push_payload(branch: str = "main", after: str = SHA) -> dict[str, Any]:
    return {
        "ref": f"refs/heads/{branch}",
        "before": "b" * 40,
        "after": after,
        "repository": {"full_name": "acme/app", "clone_url": "https://example.invalid/acme/app.git"},
        "pusher": {"name": "alice"},
        "commits": [
            {"id": "c" * 40, "message": "first", "author": {"name": "Alice", "email": "a@x"}},
            {"id": after, "message": "second", "author": {"name": "Alice", "email": "a@x"}},
        ],
    }


def pr_payload(action: str = "opened") -> dict[str, Any]:
    return {
        "action": action,
        "number": 7,
        "pull_request": {
            "number": 7,
            "title": "Add feature",
            "html_url": "https://example.invalid/acme/app/pull/7",
            "user": {"login": "bob"},
            "head": {"ref": "feature", "sha": "d" * 40},
            "base": {"ref": "main", "sha": "e" * 40},
        },
        "repository": {"full_name": "acme/app"},
    }


class Forge:
    def __init__(self, server: Server, project_id: int) -> None:
        self.http = httpx.AsyncClient(base_url=f"{server.url}/api/webhooks/{project_id}", timeout=30)

    async def github(
        self,
        event: str,
        payload: Any,
        *,
        secret: str = SECRET,
        delivery: str | None = None,
        sign: bool = True,
        body: bytes | None = None,
    ) -> httpx.Response:
        body = json.dumps(payload).encode() if body is None else body
        headers = {
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "Content-Type": "application/json",
        }
        if sign:
            headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return await self.http.post("/github", content=body, headers=headers)

    async def gitlab(self, event: str, payload: Any, token: str = SECRET) -> httpx.Response:
        headers = {"X-Gitlab-Event": event, "X-Gitlab-Token": token, "Idempotency-Key": str(uuid.uuid4())}
        return await self.http.post("/gitlab", json=payload, headers=headers)

    async def gitea(self, provider: str, event: str, payload: Any, secret: str = SECRET) -> httpx.Response:
        body = json.dumps(payload).encode()
        sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        name = "Forgejo" if provider == "forgejo" else "Gitea"
        headers = {f"X-{name}-Event": event, f"X-{name}-Signature": sig, f"X-{name}-Delivery": str(uuid.uuid4())}
        return await self.http.post(f"/{provider}", content=body, headers=headers)


async def setup(api: Api) -> tuple[int, int]:
    project_id, branch_id = await api.project_with_branch()
    await api.stage(branch_id, "hooked", HOOKED)
    await api.stage(branch_id, "child", CHILD)
    await api.stage(branch_id, "manual", MANUAL)
    return project_id, branch_id


async def cmd_of(api: Api, flow: dict[str, Any]) -> str:
    [job] = await api.jobs(flow["runs"][0]["id"])
    return str(job["steps"][0]["fields"]["cmd"])


async def test_github_push_and_pull_request(server: Server, api: Api) -> None:
    project_id, branch_id = await setup(api)
    forge = Forge(server, project_id)
    r = await forge.github("push", push_payload())
    assert r.status_code == 403 and "no webhook secret" in r.text  # not configured yet
    conf = await api.get(f"/projects/{project_id}/webhook")
    assert conf["configured"] is False and conf["urls"]["github"].endswith(f"/api/webhooks/{project_id}/github")
    r = await api.http.put(f"/projects/{project_id}/webhook", json={"secret": SECRET})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "providers"]
    r = await api.http.put(f"/projects/{project_id}/webhook", json={"secret": SECRET, "providers": ["github"]})
    assert r.status_code == 200 and "secret" not in r.json() and r.json()["providers"] == ["github"]

    r = await forge.github("push", push_payload(), delivery="d-1")
    assert r.status_code == 200, r.text
    [flow_id] = r.json()["flows"]
    flow = await api.get(f"/flows/{flow_id}")
    assert flow["kind"] == "ci" and flow["branch_id"] == branch_id
    t = flow["trigger"]
    assert t["reason"] == "webhook" and t["provider"] == "github" and t["commit"] == SHA and t["branch"] == "main"
    assert [c["message"] for c in t["commits"]] == ["second", "first"] and t["pusher"] == "alice"
    # Only the webhook stage starts; its child follows its parent, the manual stage stays out.
    assert [r["stage_name"] for r in flow["runs"]] == ["hooked"]
    assert await cmd_of(api, flow) == f"echo commit={SHA} pr=None"

    again = await forge.github("push", push_payload(), delivery="d-1")  # a redelivery
    assert again.status_code == 200 and again.json()["duplicate"] is True and again.json()["flows"] == [flow_id]
    replay = await forge.github("push", push_payload(), delivery="d-2")  # a replay under a new delivery id
    assert replay.status_code == 200 and replay.json()["duplicate"] is True and replay.json()["flows"] == [flow_id]
    other = await forge.github("push", push_payload("nope"))
    assert other.status_code == 200 and other.json()["flows"] == []
    tag = await forge.github("push", {**push_payload(), "ref": "refs/tags/v1"})
    assert tag.status_code == 200 and tag.json()["flows"] == []
    assert (await forge.github("ping", {"zen": "hi"})).status_code == 200

    pr = await forge.github("pull_request", pr_payload())
    assert pr.status_code == 200, pr.text
    [dev_id] = pr.json()["flows"]
    dev = await api.get(f"/flows/{dev_id}")
    assert dev["kind"] == "dev"
    req = dev["trigger"]["pull_request"]
    assert (req["number"], req["source_branch"], req["target_branch"], req["author"]) == (7, "feature", "main", "bob")
    assert dev["trigger"]["commit"] == "d" * 40
    assert await cmd_of(api, dev) == f"echo commit={'d' * 40} pr=7"
    closed = await forge.github("pull_request", pr_payload("closed"))
    assert closed.status_code == 200 and closed.json()["flows"] == []

    # Refusals trigger nothing.
    bad = await forge.github("push", push_payload(), secret="wrong")
    assert bad.status_code == 401 and "bad signature" in bad.text
    unsigned = await forge.github("push", push_payload(), sign=False)
    assert unsigned.status_code == 401 and "missing signature" in unsigned.text
    issues = await forge.github("issues", {"action": "opened"})
    assert issues.status_code == 400 and "unsupported event 'issues'" in issues.text
    async with httpx.AsyncClient(base_url=f"{server.url}/api/webhooks", timeout=30) as http:
        assert (await http.post("/999/github", content=b"{}")).status_code == 404
        assert (await http.post(f"/{project_id}/bitbucket", content=b"{}")).status_code == 404
    listed = await api.get(f"/branches/{branch_id}/flows")
    assert listed["total"] == 2


async def test_gitlab_gitea_forgejo(server: Server, api: Api) -> None:
    project_id, _ = await setup(api)
    r = await api.http.put(f"/projects/{project_id}/webhook", json={"providers": ["gitlab", "gitea", "forgejo"]})
    generated = r.json()["secret"]
    assert len(generated) >= 20
    forge = Forge(server, project_id)
    gl_push = {
        "ref": "refs/heads/main",
        "before": "b" * 40,
        "after": SHA,
        "user_name": "carol",
        "project": {"path_with_namespace": "acme/app", "git_http_url": "https://example.invalid/acme/app.git"},
        "commits": [{"id": SHA, "message": "gl", "author": {"name": "Carol", "email": "c@x"}}],
    }
    r = await forge.gitlab("Push Hook", gl_push, token=generated)
    assert r.status_code == 200 and len(r.json()["flows"]) == 1, r.text
    flow = await api.get(f"/flows/{r.json()['flows'][0]}")
    assert flow["trigger"]["provider"] == "gitlab" and flow["trigger"]["repo"]["name"] == "acme/app"
    assert (await forge.gitlab("Push Hook", gl_push, token="wrong")).status_code == 401
    assert (await forge.gitlab("Pipeline Hook", {}, token=generated)).status_code == 400
    mr = {
        "object_attributes": {
            "iid": 3,
            "title": "MR",
            "action": "update",
            "oldrev": "f" * 40,
            "source_branch": "feat",
            "target_branch": "main",
            "last_commit": {"id": "9" * 40},
        },
        "user": {"username": "dave"},
        "project": {"path_with_namespace": "acme/app"},
    }
    r = await forge.gitlab("Merge Request Hook", mr, token=generated)
    assert r.status_code == 200 and len(r.json()["flows"]) == 1
    dev = await api.get(f"/flows/{r.json()['flows'][0]}")
    assert dev["kind"] == "dev" and dev["trigger"]["pull_request"]["number"] == 3
    title_edit = {**mr, "object_attributes": {**mr["object_attributes"], "oldrev": None}}  # type: ignore[dict-item]
    assert (await forge.gitlab("Merge Request Hook", title_edit, token=generated)).json()["flows"] == []

    r = await forge.gitea("gitea", "push", push_payload(), secret=generated)
    assert r.status_code == 200 and len(r.json()["flows"]) == 1
    assert (await forge.gitea("gitea", "push", push_payload(), secret="nope")).status_code == 401
    r = await forge.gitea("forgejo", "pull_request", pr_payload("synchronized"), secret=generated)
    assert r.status_code == 200 and len(r.json()["flows"]) == 1
    assert (await api.get(f"/flows/{r.json()['flows'][0]}"))["kind"] == "dev"


async def test_bad_deliveries_get_4xx_and_start_nothing(server: Server, api: Api) -> None:
    project_id, branch_id = await setup(api)
    r = await api.http.put(f"/projects/{project_id}/webhook", json={"secret": SECRET, "providers": ["github"]})
    assert r.status_code == 200
    forge = Forge(server, project_id)

    # a provider the project is not set up for, even correctly signed
    r = await forge.gitea("gitea", "push", push_payload(), secret=SECRET)
    assert r.status_code == 403 and "not set up for gitea" in r.text
    # a signature header that is not ASCII
    body = json.dumps(push_payload()).encode()
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=\u00e9t\u00e9".encode()}
    r = await forge.http.post("/github", content=body, headers=headers)
    assert r.status_code == 401 and "bad signature" in r.text
    # correctly signed payloads of the wrong shape: the path of the wrong field is named
    for change, where in (
        ({"commits": [1, 2]}, "payload.commits[0]"),
        ({"pusher": "bob"}, "payload.pusher"),
        ({"repository": "x"}, "payload.repository"),
        ({"ref": ["refs/heads/main"]}, "payload.ref"),
    ):
        r = await forge.github("push", {**push_payload(), **change})
        assert r.status_code == 422 and where in r.json()["detail"], (change, r.text)
    r = await forge.github("pull_request", {"action": "opened", "pull_request": {"base": "main"}})
    assert r.status_code == 422 and "payload.pull_request.base" in r.text
    # 100 000-deep JSON, correctly signed, with a JSON content type and with another one
    deep = b"[" * 100_000 + b"]" * 100_000
    r = await forge.github("push", None, body=deep)
    assert r.status_code == 422 and "depth" in r.text
    sig = "sha256=" + hmac.new(SECRET.encode(), deep, hashlib.sha256).hexdigest()
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": sig, "Content-Type": "text/plain"}
    r = await forge.http.post("/github", content=deep, headers=headers)
    assert r.status_code == 400 and "not JSON" in r.text

    assert (await api.get(f"/branches/{branch_id}/flows"))["total"] == 0
    ok = await forge.github("push", push_payload())  # the server is fine and still takes good deliveries
    assert ok.status_code == 200 and len(ok.json()["flows"]) == 1
