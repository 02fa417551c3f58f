"""Per-project secrets (encrypted at rest) and the projects' webhook secrets."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from kraken.models.base import created_field, json_field


class Secret(SQLModel, table=True):
    """A project's secret; ``data`` is the Fernet token of its JSON value (see ``kraken.secrets``)."""

    __tablename__ = "secret"
    __table_args__ = (sa.UniqueConstraint("project_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=100)
    kind: str = Field(max_length=16)  # "simple" | "ssh-key" | "user-password"
    data: str
    created: datetime = created_field()
    updated: datetime = created_field()


class ProjectWebhook(SQLModel, table=True):
    """The secret a project's webhooks are signed with (GitHub, Gitea/Forgejo) or carry (GitLab)."""

    __tablename__ = "project_webhook"
    project_id: int = Field(foreign_key="project.id", primary_key=True, ondelete="CASCADE")
    secret: str  # Fernet token
    providers: list[str] = json_field(list)  # the forges whose deliveries are accepted
    created: datetime = created_field()
