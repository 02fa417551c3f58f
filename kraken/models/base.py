"""Shared column helpers for the ORM models."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from kraken.core.clock import utcnow

__all__ = ["utcnow"]  # re-exported: the models' and the server's clock


def json_field(default: Any = None, nullable: bool = True, name: str | None = None) -> Any:
    """A JSON column; ``default`` may be ``dict`` or ``list`` for a fresh empty value."""
    column = sa.Column(name, sa.JSON, nullable=nullable) if name else sa.Column(sa.JSON, nullable=nullable)
    if default is dict:
        return Field(default_factory=dict, sa_column=column)
    if default is list:
        return Field(default_factory=list, sa_column=column)
    return Field(default=default, sa_column=column)


def created_field() -> Any:
    return Field(default_factory=utcnow, nullable=False)
