"""Culprit finding: which commit broke a run's regressed tests (``kraken.culprits``).

One ``culprit_search`` row per group of regressed tests of a CI run that share a range: the
commit of the last CI flow where they passed (``good_commit``) and of the first where they
failed (``bad_commit``).  ``commits`` lists the range from the repository, oldest first, ending
with ``bad_commit``; bisection narrows ``lo``/``hi`` (indexes into ``[good] + commits``) with
small DEV flows of the same stage (``flows``) until one commit is left.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from kraken.models.base import created_field, json_field


class CulpritSearch(SQLModel, table=True):
    __tablename__ = "culprit_search"
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", index=True, ondelete="CASCADE")  # the CI run with the regressions
    branch_id: int = Field(foreign_key="branch.id", index=True, ondelete="CASCADE")
    stage_id: int | None = Field(default=None, foreign_key="stage.id", ondelete="SET NULL")
    tests: list[str] = json_field(list)
    good_commit: str | None = Field(default=None, max_length=64)
    bad_commit: str | None = Field(default=None, max_length=64)
    repo_url: str | None = Field(default=None, max_length=2000)
    commits: list[dict[str, Any]] = json_field(list)  # {id, author, email, timestamp, message}, oldest first
    lo: int = 0  # index into [good] + commits of the newest commit known good
    hi: int = 0  # ... of the oldest commit known bad
    culprit: str | None = Field(default=None, max_length=64)
    state: str = Field(default="pending", max_length=16)  # pending | bisecting | found | range | failed
    reason: str | None = None
    flows: list[int] = json_field(list)  # the bisection flows, in order
    current_flow_id: int | None = Field(default=None, index=True)
    created: datetime = created_field()
    finished: datetime | None = None


class CulpritSetting(SQLModel, table=True):
    """Per branch: whether culprit finding starts by itself for the regressions of each CI flow."""

    __tablename__ = "culprit_setting"
    branch_id: int = Field(primary_key=True, foreign_key="branch.id", ondelete="CASCADE")
    auto: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
