"""The audit log: one row per change made through the API by a person or a token
(``kraken.api.audit`` writes them, ``GET /api/audit`` reads them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from kraken.models.base import created_field, json_field


class AuditEntry(SQLModel, table=True):
    """Who (user, and the personal access token if one was used), when, what (the route's action
    and the resource's address), where from (client address), and for settings their values
    before and after (secret values never: routes record only what they choose, redacted).
    The user's name is kept beside the id so that an entry outlives the user."""

    __tablename__ = "audit_entry"
    id: int | None = Field(default=None, primary_key=True)
    created: datetime = created_field()
    user_id: int | None = Field(default=None, index=True)
    username: str = Field(max_length=100)
    token_id: int | None = None
    action: str = Field(max_length=100, index=True)
    method: str = Field(max_length=8)
    resource: str = Field(max_length=500)
    project_id: int | None = Field(default=None, index=True)
    client_ip: str | None = Field(default=None, max_length=64)
    status: int
    details: dict[str, Any] = json_field(dict, nullable=False)
