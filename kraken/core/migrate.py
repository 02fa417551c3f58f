"""Apply the Alembic migrations (``kraken db upgrade``; ``kraken serve`` does it on start)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.config import Config

import kraken
from alembic import command


def script_location() -> Path:
    pkg = Path(kraken.__file__).parent
    for candidate in (pkg / "_alembic", pkg.parent / "alembic"):
        if (candidate / "env.py").exists():
            return candidate
    raise FileNotFoundError("Kraken's Alembic migrations are missing from the installation")


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location()))
    cfg.attributes["url"] = url
    return cfg


def upgrade_sync(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


async def upgrade(url: str, revision: str = "head") -> None:
    # env.py runs its own event loop, so it must run in another thread.
    await asyncio.to_thread(upgrade_sync, url, revision)
