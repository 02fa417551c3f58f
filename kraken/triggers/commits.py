"""The repository state a flow ran on (``Flow.commits``), and the flow's commit (``Flow.commit``).

An entry is ``{"repo_url", "branch", "commit", "source", "new_commits"}``: ``source`` is
``webhook``, ``repository`` (a repository poll) or ``git`` (the first ``git`` step's checkout);
``new_commits`` (triggered flows) lists the commits the trigger brought, newest first, each
``{"id", "author", "email", "message", "timestamp", "url"}``.  A flow started by a trigger keeps
the trigger's state; otherwise the first git checkout reported by any of its jobs is recorded.
``Flow.commit`` (the first entry's commit) is what the flaky rule ``same_commit`` compares.
"""

from __future__ import annotations

from typing import Any

from kraken.models import Flow

COMMIT_FIELDS = ("id", "author", "email", "message", "timestamp", "url")


def _new_commits(items: Any) -> list[dict[str, Any]]:
    out = []
    for c in items if isinstance(items, list) else []:
        if isinstance(c, dict) and c.get("id"):
            out.append({k: c.get(k) for k in COMMIT_FIELDS})
    return out


def _entry(source: str, url: Any, branch: Any, commit: Any, new_commits: Any = None) -> dict[str, Any] | None:
    if not isinstance(commit, str) or not commit:
        return None
    return {
        "repo_url": url if isinstance(url, str) else None,
        "branch": branch if isinstance(branch, str) else None,
        "commit": commit,
        "source": source,
        "new_commits": _new_commits(new_commits),
    }


def from_trigger(trigger: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The repository state a webhook delivery or a repository poll names (empty for others)."""
    trigger = trigger or {}
    entries: list[dict[str, Any] | None] = []
    if trigger.get("reason") == "webhook":
        repo = trigger.get("repo") or {}
        pr = trigger.get("pull_request")
        if isinstance(pr, dict):  # the proposed change: the request's source branch and head
            url = pr.get("source_repo_url") or repo.get("url")
            entries.append(_entry("webhook", url, pr.get("source_branch"), trigger.get("commit")))
        else:
            entries.append(
                _entry("webhook", repo.get("url"), trigger.get("branch"), trigger.get("commit"), trigger.get("commits"))
            )
    elif trigger.get("reason") == "repository":
        for r in trigger.get("repositories") or []:
            if isinstance(r, dict):
                entries.append(_entry("repository", r.get("url"), r.get("branch"), r.get("after"), r.get("commits")))
    return [e for e in entries if e is not None]


def set_commits(flow: Flow, entries: list[dict[str, Any]]) -> None:
    flow.commits = entries
    flow.commit = entries[0]["commit"] if entries else None


def record_checkout(flow: Flow, info: dict[str, Any]) -> bool:
    """A git step's checkout (its ``step_info``: repo, branch, commit) becomes the flow's
    state when the flow has none yet; True when it did."""
    if flow.commits:
        return False
    entry = _entry("git", info.get("repo"), info.get("branch"), info.get("commit"))
    if entry is None:
        return False
    set_commits(flow, [entry])
    return True
