"""Apply the Alembic migrations (``kraken db upgrade``; ``kraken serve`` does it on start).

The long-lived roles (``serve``, ``server``, ``controller``) migrate in a short-lived child
process (``upgrade_in_child``): Alembic, Mako and the migration scripts (~10 MB once loaded) then
never enter the process that stays up for weeks (issue #13). ``alembic`` is imported only by the
functions that use it.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import kraken

if TYPE_CHECKING:
    from alembic.config import Config


class MigrationError(RuntimeError):
    """The migration child failed; its error is in the log above (it writes to this process's stderr)."""


def script_location() -> Path:
    pkg = Path(kraken.__file__).parent
    for candidate in (pkg / "_alembic", pkg.parent / "alembic"):
        if (candidate / "env.py").exists():
            return candidate
    raise FileNotFoundError("Kraken's Alembic migrations are missing from the installation")


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(script_location()))
    cfg.attributes["url"] = url
    return cfg


def upgrade_sync(url: str, revision: str = "head", *, with_models: bool = True) -> None:
    """``with_models=False``: the scripts only, without importing the models (they are only
    compared with the schema by ``alembic check``): the migration child starts faster."""
    from alembic import command

    cfg = alembic_config(url)
    cfg.attributes["without_models"] = not with_models
    command.upgrade(cfg, revision)


async def upgrade(url: str, revision: str = "head") -> None:
    # env.py runs its own event loop, so it must run in another thread.
    await asyncio.to_thread(upgrade_sync, url, revision)


async def upgrade_in_child(url: str, revision: str = "head") -> None:
    """``upgrade`` in a child process (``python -m kraken.core.migrate``) that shares this one's
    stdout and stderr; ``MigrationError`` if it fails. The database URL (and its password) goes
    through the child's stdin, and none of Kraken's settings is in its environment: nothing of
    them shows in its /proc files, which other processes of the user (jobs) may read."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KRAKEN_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kraken.core.migrate", revision, env=env, stdin=asyncio.subprocess.PIPE
    )
    await proc.communicate(url.encode())
    if proc.returncode != 0:
        raise MigrationError(f"the database migrations failed (exit code {proc.returncode}): see the error above")


def main(argv: list[str]) -> None:
    """The child: the URL on stdin, the revision as the argument."""
    import logging

    from kraken.core.hardening import not_dumpable

    not_dumpable()  # the URL is in its memory from here on
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    upgrade_sync(sys.stdin.read().strip(), argv[0] if argv else "head", with_models=False)


if __name__ == "__main__":
    main(sys.argv[1:])
