"""Alembic environment: async engines, SQLite (batch mode) and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

from alembic import context


def _target_metadata() -> MetaData | None:
    """The models' tables, which only a comparison (``alembic check``, autogenerate) needs: the
    migration child of the long-lived roles (``upgrade_in_child``) runs the scripts without them."""
    if context.config.attributes.get("without_models"):
        return None
    import kraken.models  # noqa: F401  (registers the tables)
    from kraken.models.registry import load_all_models

    load_all_models()
    return SQLModel.metadata


target_metadata = _target_metadata()


def _url() -> str:
    url = context.config.attributes.get("url") or os.environ.get("KRAKEN_DATABASE_URL")
    if not url:
        from kraken.core.config import Settings

        url = Settings().effective_database_url
    return str(url)


SQLITE_ONLY_ELSEWHERE = ("log_line", "log_index_state", "service_log")  # on SQLite, in the log search's own file


def _include_object(dialect: str) -> Callable[[object, str | None, str, bool, object], bool]:
    def include(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
        # per-job staging tables of test-result ingestion are made and dropped at run time; the
        # log search's trigram index exists in migration 0021 only, and on SQLite its tables
        # live in a file of their own (kraken/logs/sqlite_index.py)
        if name is None:
            return True
        if type_ == "table" and (
            name.startswith("results_stage_") or (dialect == "sqlite" and name in SQLITE_ONLY_ELSEWHERE)
        ):
            return False
        if type_ == "index" and dialect == "sqlite" and name.startswith(("ix_log_line_", "ix_service_log_")):
            return False
        return not (type_ == "index" and name in ("ix_log_line_text_trgm", "ix_service_log_text_trgm"))

    return include


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=_include_object(connection.dialect.name),
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Replicas starting together: one migrates, the others wait and find nothing to do.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(726172)")
        context.run_migrations()


async def _run_online() -> None:
    engine = create_async_engine(_url())
    async with engine.connect() as conn:
        await conn.run_sync(_configure)
        await conn.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
