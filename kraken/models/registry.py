"""Imports every module that defines tables, so that SQLModel.metadata is complete.

A new module of tables is added to the import below (a typo fails at start, in mypy and ruff).
"""

from __future__ import annotations

from kraken.models import (
    access,
    artifacts,
    audit,
    comments,
    core,
    culprits,
    idempotency,
    logs,
    notify,
    quarantine,
    results,
    secrets,
    tools,
    triggers,
)

MODEL_MODULES = (
    core,
    results,
    secrets,
    triggers,
    artifacts,
    notify,
    comments,
    idempotency,
    tools,
    access,
    audit,
    logs,
    quarantine,
    culprits,
)


def load_all_models() -> None:
    """Every model module is loaded: importing this module imported them."""
