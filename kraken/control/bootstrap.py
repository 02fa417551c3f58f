"""First start: the signing key, the agent token and the admin user.

Generated values are shared by every server replica through the database
(``server_secret``), written to the data dir (0700) in files created with mode 0600, and
printed once.
"""

from __future__ import annotations

import logging
import sys

from sqlmodel import select

from kraken.core.config import Settings
from kraken.core.db import Database
from kraken.core.files import private_dir, write_new_secret_file
from kraken.core.security import hash_password, new_secret
from kraken.core.sql import insert_ignore
from kraken.models import ServerSecret, User
from kraken.models.base import utcnow

log = logging.getLogger(__name__)


async def _secret(db: Database, name: str, configured: str | None) -> tuple[str, bool]:
    """The configured value, or the stored one, or a new one (returned with created=True)."""
    if configured:
        return configured, False
    candidate = new_secret()
    async with db.transaction() as session:
        created = await insert_ignore(session, ServerSecret, {"name": name, "value": candidate})
        value = (await session.execute(select(ServerSecret.value).where(ServerSecret.name == name))).scalar_one()
    return value, created


def _announce(settings: Settings, filename: str, what: str, value: str) -> None:
    private_dir(settings.data_dir)
    path = settings.data_dir / filename
    write_new_secret_file(path, value + "\n")  # O_EXCL, 0600 from the start
    print(f"kraken: generated {what}: {value}  (kept in {path})", file=sys.stderr, flush=True)


async def bootstrap(db: Database, settings: Settings) -> tuple[str, str]:
    """Return (signing key, agent token); creates the admin user on first start."""
    key, _ = await _secret(db, "secret_key", settings.secret_key)
    token, token_new = await _secret(db, "agent_token", settings.agent_token)
    if token_new:
        _announce(settings, "agent-token", "agent token", token)
    password = settings.admin_password or new_secret(12)
    async with db.transaction() as session:
        created = await insert_ignore(
            session,
            User,
            {"username": "admin", "password_hash": hash_password(password), "is_admin": True, "created": utcnow()},
        )
    if created and not settings.admin_password:
        _announce(settings, "admin-password", "password of user 'admin'", password)
    return key, token
