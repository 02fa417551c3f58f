"""Imports every module that defines tables, so that SQLModel.metadata is complete.

A new module of tables is added to the import below (a typo fails at start, in mypy and ruff).
"""

from __future__ import annotations

from kraken.models import (
    access,
    artifacts,
    comments,
    core,
    culprits,
    idempotency,
    notify,
    results,
    secrets,
    tools,
    triggers,
)

MODEL_MODULES = (core, results, secrets, triggers, artifacts, notify, comments, idempotency, tools, access, culprits)


def load_all_models() -> None:
    """Every model module is loaded: importing this module imported them."""
