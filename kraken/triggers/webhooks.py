"""Webhook deliveries of GitHub, GitLab and Gitea/Forgejo: signature checks and the events.

- GitHub: ``X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body>``, ``X-GitHub-Event``,
  ``X-GitHub-Delivery``;
- GitLab: ``X-Gitlab-Token: <secret>``, ``X-Gitlab-Event`` (``Push Hook``, ``Merge Request
  Hook``), ``Idempotency-Key`` / ``X-Gitlab-Event-UUID``;
- Gitea / Forgejo: ``X-Gitea-Signature`` / ``X-Forgejo-Signature: <HMAC-SHA256 hex>``,
  ``X-Gitea-Event`` / ``X-Forgejo-Event``, ``X-Gitea-Delivery`` / ``X-Forgejo-Delivery``.

A push to a branch starts a CI flow; a pull/merge request opened, reopened or updated with new
commits starts a dev flow on the target branch.  Other actions (closed, labeled, tag pushes,
branch deletions) are accepted and ignored; other event types are refused.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

Provider = Literal["github", "gitlab", "gitea", "forgejo"]
PROVIDERS: tuple[str, ...] = get_args(Provider)
ZERO_SHA = "0" * 40
MAX_COMMITS = 50


class WebhookError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class WebhookEvent:
    name: str  # the provider's event name
    action: str  # "push" | "pull_request" | "ping" | "ignore"
    branch: str | None = None  # push: the pushed branch; pull request: its target branch
    trigger: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def flow_kind(self) -> str:
        return "dev" if self.action == "pull_request" else "ci"


def _header(headers: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = headers.get(name)
        if value:
            return value
    return None


def verify(provider: str, headers: Mapping[str, str], body: bytes, secret: str) -> None:
    """Raise ``WebhookError(401)`` unless the delivery is signed (or carries the token) right."""
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if provider == "github":
        given = _header(headers, "x-hub-signature-256") or ""
        ok = given.startswith("sha256=") and hmac.compare_digest(given[7:].encode(), expected.encode())
        missing = not given
    elif provider == "gitlab":
        given = _header(headers, "x-gitlab-token") or ""
        ok = bool(given) and hmac.compare_digest(given.encode(), secret.encode())
        missing = not given
    else:
        given = _header(headers, "x-forgejo-signature", "x-gitea-signature", "x-hub-signature-256") or ""
        given = given.removeprefix("sha256=")
        ok = bool(given) and hmac.compare_digest(given.encode(), expected.encode())
        missing = not given
    if not ok:
        raise WebhookError(401, "missing signature" if missing else "bad signature")


def event_name(provider: str, headers: Mapping[str, str]) -> str:
    if provider == "github":
        return _header(headers, "x-github-event") or ""
    if provider == "gitlab":
        return _header(headers, "x-gitlab-event") or ""
    return _header(headers, "x-forgejo-event", "x-gitea-event", "x-github-event") or ""


def delivery_id(body: bytes) -> str:
    """What recognises a repeated delivery: the hash of its body. The forges' delivery ids are
    not signed, so a captured delivery replayed with a new id would start its flows again."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


Scalar = str | int | float | bool | None


class Payload:
    """A JSON object of a delivery, read with its shape checked: a field of the wrong type is a
    ``WebhookError(422)`` naming its path (``payload.commits[0]``), never a crash."""

    def __init__(self, data: dict[str, Any], path: str = "payload") -> None:
        self.data = data
        self.path = path

    def _wrong(self, key: str, what: str) -> WebhookError:
        value = self.data[key]
        return WebhookError(422, f"{self.path}.{key} must be {what}, not {type(value).__name__}")

    def obj(self, key: str) -> Payload:
        value = self.data.get(key)
        if value is None:
            return Payload({}, f"{self.path}.{key}")
        if not isinstance(value, dict):
            raise self._wrong(key, "an object")
        return Payload(value, f"{self.path}.{key}")

    def scalar(self, key: str) -> Scalar:
        value = self.data.get(key)
        if value is None or isinstance(value, str | int | float | bool):
            return value
        raise self._wrong(key, "a string or a number")

    def text(self, key: str) -> str:
        """A string field ('' when absent)."""
        value = self.data.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self._wrong(key, "a string")
        return value

    def items(self, key: str) -> list[Payload]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self._wrong(key, "a list")
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise WebhookError(422, f"{self.path}.{key}[{i}] must be an object, not {type(item).__name__}")
            out.append(Payload(item, f"{self.path}.{key}[{i}]"))
        return out


def _commits(items: list[Payload]) -> list[dict[str, Any]]:
    out = []
    for c in items[-MAX_COMMITS:]:
        author = c.obj("author")
        out.append(
            {
                "id": c.scalar("id"),
                "message": c.scalar("message"),
                "timestamp": c.scalar("timestamp"),
                "url": c.scalar("url"),
                "author": author.scalar("name") or author.scalar("username"),
                "email": author.scalar("email"),
            }
        )
    return list(reversed(out))  # newest first


def _push(provider: str, name: str, p: Payload) -> WebhookEvent:
    ref = p.text("ref")
    after = p.text("after") or p.text("checkout_sha")
    if not ref.startswith("refs/heads/"):
        return WebhookEvent(name, "ignore", note=f"not a branch push ({ref or 'no ref'})")
    if p.scalar("deleted") or after == ZERO_SHA or not after:
        return WebhookEvent(name, "ignore", note="branch deleted")
    branch = ref[len("refs/heads/") :]
    repo = p.obj("repository")
    project = p.obj("project")
    pusher = p.obj("pusher")
    trigger = {
        "reason": "webhook",
        "provider": provider,
        "event": "push",
        "ref": ref,
        "branch": branch,
        "before": p.scalar("before"),
        "after": after,
        "commit": after,
        "commits": _commits(p.items("commits")),
        "repo": {
            "name": repo.scalar("full_name") or project.scalar("path_with_namespace") or repo.scalar("name"),
            "url": repo.scalar("clone_url") or project.scalar("git_http_url") or repo.scalar("git_http_url"),
            "web_url": repo.scalar("html_url") or project.scalar("web_url") or repo.scalar("homepage"),
        },
        "pusher": pusher.scalar("name") or pusher.scalar("login") or pusher.scalar("username") or p.scalar("user_name"),
    }
    return WebhookEvent(name, "push", branch=branch, trigger=trigger)


GITHUB_PR_ACTIONS = {"opened", "synchronize", "synchronized", "reopened", "ready_for_review"}


def _pull_request(provider: str, name: str, p: Payload) -> WebhookEvent:
    action = p.text("action")
    if action not in GITHUB_PR_ACTIONS:
        return WebhookEvent(name, "ignore", note=f"pull request action '{action}' starts nothing")
    pr = p.obj("pull_request")
    head, base = pr.obj("head"), pr.obj("base")
    repo = p.obj("repository")
    target = base.text("ref") or None
    request = {
        "number": pr.scalar("number") or p.scalar("number"),
        "title": pr.scalar("title"),
        "url": pr.scalar("html_url"),
        "author": pr.obj("user").scalar("login"),
        "action": action,
        "source_branch": head.scalar("ref"),
        "target_branch": target,
        "head_sha": head.scalar("sha"),
        "base_sha": base.scalar("sha"),
        "source_repo_url": head.obj("repo").scalar("clone_url"),
    }
    trigger = {
        "reason": "webhook",
        "provider": provider,
        "event": "pull_request",
        "pull_request": request,
        "commit": head.scalar("sha"),
        "branch": target,
        "repo": {"name": repo.scalar("full_name"), "url": repo.scalar("clone_url"), "web_url": repo.scalar("html_url")},
    }
    return WebhookEvent(name, "pull_request", branch=target, trigger=trigger)


def _merge_request(name: str, p: Payload) -> WebhookEvent:
    attrs = p.obj("object_attributes")
    action = attrs.text("action")
    if action not in ("open", "reopen") and not (action == "update" and attrs.scalar("oldrev")):
        return WebhookEvent(name, "ignore", note=f"merge request action '{action}' starts nothing")
    last = attrs.obj("last_commit")
    project = p.obj("project")
    target = attrs.text("target_branch") or None
    request = {
        "number": attrs.scalar("iid"),
        "title": attrs.scalar("title"),
        "url": attrs.scalar("url"),
        "author": p.obj("user").scalar("username"),
        "action": action,
        "source_branch": attrs.scalar("source_branch"),
        "target_branch": target,
        "head_sha": last.scalar("id"),
        "source_repo_url": attrs.obj("source").scalar("git_http_url"),
    }
    trigger = {
        "reason": "webhook",
        "provider": "gitlab",
        "event": "merge_request",
        "pull_request": request,
        "commit": last.scalar("id"),
        "branch": target,
        "repo": {
            "name": project.scalar("path_with_namespace"),
            "url": project.scalar("git_http_url"),
            "web_url": project.scalar("web_url"),
        },
    }
    return WebhookEvent(name, "pull_request", branch=target, trigger=trigger)


def parse(provider: str, name: str, payload: Any) -> WebhookEvent:
    """The event of a verified delivery; ``WebhookError(400)`` for unsupported events."""
    if not isinstance(payload, dict):
        raise WebhookError(400, "the body is not a JSON object")
    p = Payload(payload)
    if provider == "gitlab":
        if name == "Push Hook":
            return _push(provider, name, p)
        if name == "Merge Request Hook":
            return _merge_request(name, p)
        if name == "Tag Push Hook":
            return WebhookEvent(name, "ignore", note="tag pushes start nothing")
        raise WebhookError(400, f"unsupported event {name!r} (supported: Push Hook, Merge Request Hook)")
    if name == "ping":
        return WebhookEvent(name, "ping", note="pong")
    if name == "push":
        return _push(provider, name, p)
    if name == "pull_request":
        return _pull_request(provider, name, p)
    if name == "create":
        return WebhookEvent(name, "ignore", note="branch or tag creation starts nothing (its push does)")
    raise WebhookError(400, f"unsupported event {name!r} (supported: push, pull_request, ping)")
