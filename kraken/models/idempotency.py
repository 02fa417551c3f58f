"""Idempotency keys: a triggering request sent again with the same ``Idempotency-Key`` (same
user, within 24 h) answers with what the first one created instead of creating it twice."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from kraken.models.base import created_field


class IdempotencyKey(SQLModel, table=True):
    __tablename__ = "idempotency_key"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "key", name="uq_idempotency_key_user_key"),
        sa.Index("ix_idempotency_key_created", "created"),
    )
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", ondelete="CASCADE")
    key: str = Field(max_length=200)
    request: str = Field(max_length=300)  # e.g. "POST /api/branches/3/flows"
    resource_id: int  # what the first request created: a flow, a run or a job
    created: datetime = created_field()
