"""The planner's fire times and the webhook deliveries already handled."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from kraken.models.base import created_field, json_field


class TriggerState(SQLModel, table=True):
    """One timed trigger of a stage (cron, interval, date, repository) and when it fires next.

    A planner claims a due row with a lease (``lease_owner``/``lease_until``), then creates the
    flow and advances ``next_at`` in one transaction: a trigger fires once across restarts and
    controllers."""

    __tablename__ = "trigger_state"
    __table_args__ = (sa.UniqueConstraint("stage_id", "kind"),)
    id: int | None = Field(default=None, primary_key=True)
    stage_id: int = Field(foreign_key="stage.id", index=True, ondelete="CASCADE")
    kind: str = Field(max_length=16)
    spec: str  # the trigger's definition when next_at was computed (a change recomputes it)
    next_at: datetime | None = Field(default=None, index=True)
    lease_owner: str | None = Field(default=None, max_length=200)
    lease_until: datetime | None = None
    last_fired: datetime | None = None
    fired: int = 0
    data: dict[str, Any] = json_field(dict)  # repository: last seen heads
    created: datetime = created_field()


class WebhookDelivery(SQLModel, table=True):
    __tablename__ = "webhook_delivery"
    __table_args__ = (sa.UniqueConstraint("project_id", "provider", "delivery_id"),)
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True, ondelete="CASCADE")
    provider: str = Field(max_length=16)
    delivery_id: str = Field(max_length=200)
    event: str = Field(max_length=64)
    flows: list[int] = json_field(list)
    created: datetime = created_field()
