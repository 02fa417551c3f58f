"""API shapes of a flow's repository state (see ``kraken.triggers.commits``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class CommitOut(BaseModel):
    id: str
    author: str | None = None
    email: str | None = None
    message: str | None = None
    timestamp: str | None = None
    url: str | None = None


class RepoStateOut(BaseModel):
    repo_url: str | None
    branch: str | None
    commit: str
    source: Literal["webhook", "repository", "git"]
    new_commits: list[CommitOut] = []
