"""API shapes of the audit log (``GET /api/audit``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created: datetime
    user_id: int | None
    username: str
    token_id: int | None = Field(description="the personal access token used, if any")
    action: str = Field(description="the route's operation, e.g. set_retention")
    method: str
    resource: str = Field(description="the address changed, under /api")
    project_id: int | None
    client_ip: str | None
    status: int
    details: dict[str, Any] = Field(description="id: what a creation made; before/after: a setting's values")


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_before: int | None = Field(description="pass as ?before= for the next (older) page; null at the end")
