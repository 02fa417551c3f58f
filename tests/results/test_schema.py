"""The results tables as the migrations build them (``alembic check`` does not compare collations)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from kraken.core.migrate import upgrade


async def test_test_names_compare_bytewise(database_url: str) -> None:
    """Test names sort and index byte-wise, as the staging tables' names do (PostgreSQL: collation "C")."""
    await upgrade(database_url)
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            values = "(1, 'b'), (1, 'B'), (1, 'a.b')"
            await conn.execute(sa.text(f"INSERT INTO test_case (project_id, name) VALUES {values}"))
            names = (await conn.execute(sa.text("SELECT name FROM test_case ORDER BY name"))).scalars().all()
            if conn.dialect.name == "postgresql":
                collation = (
                    await conn.execute(
                        sa.text(
                            "SELECT collation_name FROM information_schema.columns "
                            "WHERE table_name = 'test_case' AND column_name = 'name'"
                        )
                    )
                ).scalar()
                assert collation == "C"
    finally:
        await engine.dispose()
    assert names == ["B", "a.b", "b"]
