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
from typing import Any

PROVIDERS = ("github", "gitlab", "gitea", "forgejo")
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
        ok = given.startswith("sha256=") and hmac.compare_digest(given[7:], expected)
        missing = not given
    elif provider == "gitlab":
        given = _header(headers, "x-gitlab-token") or ""
        ok = bool(given) and hmac.compare_digest(given.encode(), secret.encode())
        missing = not given
    else:
        given = _header(headers, "x-forgejo-signature", "x-gitea-signature", "x-hub-signature-256") or ""
        given = given.removeprefix("sha256=")
        ok = bool(given) and hmac.compare_digest(given, expected)
        missing = not given
    if not ok:
        raise WebhookError(401, "missing signature" if missing else "bad signature")


def event_name(provider: str, headers: Mapping[str, str]) -> str:
    if provider == "github":
        return _header(headers, "x-github-event") or ""
    if provider == "gitlab":
        return _header(headers, "x-gitlab-event") or ""
    return _header(headers, "x-forgejo-event", "x-gitea-event", "x-github-event") or ""


def delivery_id(provider: str, headers: Mapping[str, str], body: bytes) -> str:
    if provider == "github":
        found = _header(headers, "x-github-delivery")
    elif provider == "gitlab":
        found = _header(headers, "idempotency-key", "x-gitlab-event-uuid")
    else:
        found = _header(headers, "x-forgejo-delivery", "x-gitea-delivery", "x-github-delivery")
    return (found or "sha256:" + hashlib.sha256(body).hexdigest())[:200]


def _commits(items: Any) -> list[dict[str, Any]]:
    out = []
    for c in (items or [])[-MAX_COMMITS:]:
        author = c.get("author") or {}
        out.append(
            {
                "id": c.get("id"),
                "message": c.get("message"),
                "timestamp": c.get("timestamp"),
                "url": c.get("url"),
                "author": author.get("name") or author.get("username"),
                "email": author.get("email"),
            }
        )
    return list(reversed(out))  # newest first


def _push(provider: str, name: str, p: dict[str, Any]) -> WebhookEvent:
    ref = str(p.get("ref") or "")
    after = str(p.get("after") or p.get("checkout_sha") or "")
    if not ref.startswith("refs/heads/"):
        return WebhookEvent(name, "ignore", note=f"not a branch push ({ref or 'no ref'})")
    if p.get("deleted") or after == ZERO_SHA or not after:
        return WebhookEvent(name, "ignore", note="branch deleted")
    branch = ref[len("refs/heads/") :]
    repo = p.get("repository") or {}
    project = p.get("project") or {}
    trigger = {
        "reason": "webhook",
        "provider": provider,
        "event": "push",
        "ref": ref,
        "branch": branch,
        "before": p.get("before"),
        "after": after,
        "commit": after,
        "commits": _commits(p.get("commits")),
        "repo": {
            "name": repo.get("full_name") or project.get("path_with_namespace") or repo.get("name"),
            "url": repo.get("clone_url") or project.get("git_http_url") or repo.get("git_http_url"),
            "web_url": repo.get("html_url") or project.get("web_url") or repo.get("homepage"),
        },
        "pusher": (p.get("pusher") or {}).get("name")
        or (p.get("pusher") or {}).get("login")
        or (p.get("pusher") or {}).get("username")
        or p.get("user_name"),
    }
    return WebhookEvent(name, "push", branch=branch, trigger=trigger)


GITHUB_PR_ACTIONS = {"opened", "synchronize", "synchronized", "reopened", "ready_for_review"}


def _pull_request(provider: str, name: str, p: dict[str, Any]) -> WebhookEvent:
    action = str(p.get("action") or "")
    if action not in GITHUB_PR_ACTIONS:
        return WebhookEvent(name, "ignore", note=f"pull request action '{action}' starts nothing")
    pr = p.get("pull_request") or {}
    head, base = pr.get("head") or {}, pr.get("base") or {}
    repo = p.get("repository") or {}
    request = {
        "number": pr.get("number") or p.get("number"),
        "title": pr.get("title"),
        "url": pr.get("html_url"),
        "author": (pr.get("user") or {}).get("login"),
        "action": action,
        "source_branch": head.get("ref"),
        "target_branch": base.get("ref"),
        "head_sha": head.get("sha"),
        "base_sha": base.get("sha"),
        "source_repo_url": (head.get("repo") or {}).get("clone_url"),
    }
    trigger = {
        "reason": "webhook",
        "provider": provider,
        "event": "pull_request",
        "pull_request": request,
        "commit": head.get("sha"),
        "branch": base.get("ref"),
        "repo": {"name": repo.get("full_name"), "url": repo.get("clone_url"), "web_url": repo.get("html_url")},
    }
    return WebhookEvent(name, "pull_request", branch=base.get("ref"), trigger=trigger)


def _merge_request(name: str, p: dict[str, Any]) -> WebhookEvent:
    attrs = p.get("object_attributes") or {}
    action = str(attrs.get("action") or "")
    if action not in ("open", "reopen") and not (action == "update" and attrs.get("oldrev")):
        return WebhookEvent(name, "ignore", note=f"merge request action '{action}' starts nothing")
    last = attrs.get("last_commit") or {}
    project = p.get("project") or {}
    request = {
        "number": attrs.get("iid"),
        "title": attrs.get("title"),
        "url": attrs.get("url"),
        "author": (p.get("user") or {}).get("username"),
        "action": action,
        "source_branch": attrs.get("source_branch"),
        "target_branch": attrs.get("target_branch"),
        "head_sha": last.get("id"),
        "source_repo_url": (attrs.get("source") or {}).get("git_http_url"),
    }
    trigger = {
        "reason": "webhook",
        "provider": "gitlab",
        "event": "merge_request",
        "pull_request": request,
        "commit": last.get("id"),
        "branch": attrs.get("target_branch"),
        "repo": {
            "name": project.get("path_with_namespace"),
            "url": project.get("git_http_url"),
            "web_url": project.get("web_url"),
        },
    }
    return WebhookEvent(name, "pull_request", branch=attrs.get("target_branch"), trigger=trigger)


def parse(provider: str, name: str, payload: Any) -> WebhookEvent:
    """The event of a verified delivery; ``WebhookError(400)`` for unsupported events."""
    if not isinstance(payload, dict):
        raise WebhookError(400, "the body is not a JSON object")
    if provider == "gitlab":
        if name == "Push Hook":
            return _push(provider, name, payload)
        if name == "Merge Request Hook":
            return _merge_request(name, payload)
        if name == "Tag Push Hook":
            return WebhookEvent(name, "ignore", note="tag pushes start nothing")
        raise WebhookError(400, f"unsupported event {name!r} (supported: Push Hook, Merge Request Hook)")
    if name == "ping":
        return WebhookEvent(name, "ping", note="pong")
    if name == "push":
        return _push(provider, name, payload)
    if name == "pull_request":
        return _pull_request(provider, name, payload)
    if name == "create":
        return WebhookEvent(name, "ignore", note="branch or tag creation starts nothing (its push does)")
    raise WebhookError(400, f"unsupported event {name!r} (supported: push, pull_request, ping)")
