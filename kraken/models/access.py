"""Who may do what: project members and personal access tokens (``kraken.api.authz``)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from kraken.models.base import created_field


class ProjectMember(SQLModel, table=True):
    """A user's role in a project: ``viewer``, ``member`` or ``maintainer``."""

    __tablename__ = "project_member"
    project_id: int = Field(foreign_key="project.id", primary_key=True, ondelete="CASCADE")
    user_id: int = Field(foreign_key="user.id", primary_key=True, index=True, ondelete="CASCADE")
    role: str = Field(max_length=16)


class ApiToken(SQLModel, table=True):
    """A personal access token; only the SHA-256 of the token is kept."""

    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=100)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    scopes: str = Field(max_length=64)  # space-separated: read trigger write admin
    created: datetime = created_field()
    expires: datetime | None = None
    last_used: datetime | None = None
    revoked: bool = False
