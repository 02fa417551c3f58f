"""API shapes of culprit finding (``kraken.culprits``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CulpritCommitOut(BaseModel):
    id: str
    author: str | None = None
    email: str | None = None
    timestamp: str | None = None
    message: str | None = None


class CulpritSearchOut(BaseModel):
    id: int
    tests: list[str]
    good_commit: str | None = Field(description="the commit of the last CI flow where the tests passed")
    bad_commit: str | None = Field(description="the commit of the first CI flow where they failed")
    culprit: str | None = Field(description="the first bad commit, once found")
    culprit_commit: CulpritCommitOut | None = Field(description="the culprit's author and message")
    state: Literal["pending", "bisecting", "found", "range", "failed"]
    reason: str | None = Field(description="why it failed, or why the range was not bisected")
    flows: list[int] = Field(description="the bisection flows (DEV flows marked trigger.reason 'culprit')")
    range_commits: int = Field(description="commits after good_commit up to bad_commit (0 until read)")
    created: datetime
    finished: datetime | None


class CulpritSettingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    auto: bool = Field(description="start culprit finding for the regressions of every completed CI flow")


class CulpritSettingOut(BaseModel):
    branch_id: int
    auto: bool
