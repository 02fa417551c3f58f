"""Stored bytes (content-addressed blobs), artifacts, cache entries and branch retention."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from kraken.models.base import created_field


class Blob(SQLModel, table=True):
    """Bytes in the artifact store, named by their sha256; removed when nothing refers to them."""

    sha256: str = Field(primary_key=True, max_length=64)
    size: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    created: datetime = created_field()
    last_used: datetime = created_field()


class Artifact(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("job_id", "path"),)
    id: int | None = Field(default=None, primary_key=True)
    branch_id: int = Field(foreign_key="branch.id", index=True, ondelete="CASCADE")
    flow_id: int = Field(foreign_key="flow.id", index=True, ondelete="CASCADE")
    run_id: int = Field(foreign_key="run.id", index=True, ondelete="CASCADE")
    job_id: int = Field(foreign_key="job.id", ondelete="CASCADE")
    stage_name: str = Field(max_length=200)
    path: str = Field(max_length=1000)  # relative, '/'-separated
    size: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    sha256: str = Field(max_length=64, index=True)
    public: bool = False
    # the entry page of an HTML report (the artifacts tool's report_entry): served with the
    # other artifacts of its directory in the run under GET /api/runs/{id}/reports/{this id}/
    report_entry: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    created: datetime = created_field()


class CacheEntry(SQLModel, table=True):
    __tablename__ = "cache_entry"
    __table_args__ = (sa.UniqueConstraint("branch_id", "dev_flow_id", "key", name="uq_cache_entry_scope_key"),)
    id: int | None = Field(default=None, primary_key=True)
    branch_id: int = Field(foreign_key="branch.id", index=True, ondelete="CASCADE")
    # 0: the branch's cache, written by CI flows, read by all its flows; else the dev flow whose own
    # entry this is (a pull request's code must not plant what CI later restores)
    dev_flow_id: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    key: str = Field(max_length=500)
    size: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    sha256: str = Field(max_length=64, index=True)
    job_id: int | None = None
    created: datetime = created_field()
    last_used: datetime = created_field()


class BranchRetention(SQLModel, table=True):
    """How long a branch keeps its flows' artifacts and logs (unset: the server's defaults)."""

    __tablename__ = "branch_retention"
    branch_id: int = Field(foreign_key="branch.id", primary_key=True, ondelete="CASCADE")
    keep_flows: int | None = None
    keep_days: float | None = None
