"""Custom tools: versioned tool packages registered by administrators (``docs/tools.md``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from kraken.models.base import created_field


class CustomTool(SQLModel, table=True):
    """One version of a custom tool: its manifest and its package (a deterministic tar.gz)."""

    __tablename__ = "custom_tool"
    __table_args__ = (sa.UniqueConstraint("name", "version", name="uq_custom_tool_name_version"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, index=True)
    version: str = Field(max_length=64)
    description: str = Field(default="", max_length=2000)
    fields_schema: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False))
    entry: str = Field(max_length=1000)
    digest: str = Field(max_length=64)  # sha256 of the package
    size: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    source: str = Field(default="", max_length=2000)  # where it was registered from
    package: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    created: datetime = created_field()
