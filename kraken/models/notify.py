"""Notifications sent (or that failed) for runs and flows."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from kraken.models.base import created_field


class Notification(SQLModel, table=True):
    """One message to one destination; ``key`` makes a retried task send it once."""

    __table_args__ = (sa.UniqueConstraint("key"),)
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=500)
    flow_id: int = Field(foreign_key="flow.id", index=True, ondelete="CASCADE")
    run_id: int | None = Field(default=None, foreign_key="run.id", index=True, ondelete="CASCADE")
    event: str = Field(max_length=16)  # started | completed | changes
    channel: str = Field(max_length=16)  # email | slack | discord | webhook | github
    destination: str  # secrets masked
    state: str = Field(default="pending", max_length=16)  # pending | sent | failed
    attempts: int = 0
    error: str | None = None
    created: datetime = created_field()
    finished: datetime | None = None
