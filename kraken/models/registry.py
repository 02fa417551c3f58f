"""Imports every module that defines tables, so that SQLModel.metadata is complete."""

from __future__ import annotations

import importlib

MODEL_MODULES = [
    "kraken.models.core",
    "kraken.models.results",
    "kraken.models.secrets",
    "kraken.models.triggers",
    "kraken.models.artifacts",
    "kraken.models.notify",
    "kraken.models.comments",
    "kraken.models.access",
]


def load_all_models() -> None:
    for name in MODEL_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
