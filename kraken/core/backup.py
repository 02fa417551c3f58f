"""Backups of the embedded (SQLite) database: ``kraken db backup FILE`` / ``kraken db restore FILE``.

A backup uses SQLite's online backup API, so it is consistent while ``kraken serve`` runs and
writes (each step copies pages under a read lock; pages changed meanwhile are copied again).
A restore needs the server stopped: ``kraken serve`` holds an exclusive lock on
``<data dir>/serve.lock`` while it runs, and a restore refuses to proceed while it is held.

The database holds everything but the key that encrypts project secrets (``secrets.key`` in the
data dir, or ``KRAKEN_SECRETS_KEY``): keep that key with the backups, apart from them. PostgreSQL
deployments back up with ``pg_dump`` (docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

LOCK_NAME = "serve.lock"
PAGES_PER_STEP = 4096  # ~16 MB per step: writers wait at most one step's time for the read lock


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why and what to do."""


def sqlite_file(database_url: str) -> Path:
    """The file of a ``sqlite+aiosqlite:///...`` URL; other databases have their own tools."""
    prefix = "sqlite+aiosqlite:///"
    if not database_url.startswith(prefix):
        raise BackupError(
            "kraken db backup/restore handle the embedded SQLite database; "
            "back up PostgreSQL with pg_dump / pg_restore (docs/reliability.md)"
        )
    return Path(database_url[len(prefix) :])


@contextlib.contextmanager
def serve_lock(data_dir: Path) -> Iterator[None]:
    """Held by ``kraken serve`` for as long as it runs on ``data_dir``."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise BackupError(f"another kraken serve runs on {data_dir} (it holds {LOCK_NAME})") from exc
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _check_kraken_database(conn: sqlite3.Connection, what: Path) -> str:
    """The migration revision of a sound Kraken database, or a BackupError saying what is wrong."""
    try:
        status = conn.execute("PRAGMA quick_check").fetchone()
        if status is None or status[0] != "ok":
            raise BackupError(f"{what} is damaged: {status[0] if status else 'no answer'}")
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{what} is not a Kraken database: {exc}") from exc
    if row is None:
        raise BackupError(f"{what} is not a Kraken database: it has no migration revision")
    return str(row[0])


def backup(database_url: str, dest: Path, *, overwrite: bool = False) -> str:
    """Copy the live database to ``dest`` (mode 0600); returns its migration revision."""
    source = sqlite_file(database_url)
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    if dest.exists() and not overwrite:
        raise BackupError(f"{dest} exists (use --force to replace it)")
    if not dest.parent.is_dir():
        raise BackupError(f"{dest.parent} is not a directory")
    tmp = dest.with_name(f".{dest.name}.partial")
    tmp.unlink(missing_ok=True)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # 0600 before any byte is written
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst, pages=PAGES_PER_STEP)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            revision = _check_kraken_database(dst, source)
        finally:
            dst.close()
            src.close()
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return revision


def _retire_journal(target: Path) -> None:
    """Fold the old database's write-ahead log into it and remove it, so that it can never be
    replayed onto the restored file."""
    if target.is_file():
        old = sqlite3.connect(target)
        try:
            old.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            old.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)


def restore(database_url: str, src_file: Path, data_dir: Path) -> str:
    """Replace the database with the backup ``src_file`` (the server must be stopped)."""
    target = sqlite_file(database_url)
    if not src_file.is_file():
        raise BackupError(f"no backup at {src_file}")
    src = sqlite3.connect(f"file:{src_file}?mode=ro", uri=True)
    try:
        revision = _check_kraken_database(src, src_file)
        with serve_lock(data_dir):
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = target.with_name(f".{target.name}.restoring")
            tmp.unlink(missing_ok=True)
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            try:
                dst = sqlite3.connect(tmp)
                try:
                    src.backup(dst, pages=PAGES_PER_STEP)
                finally:
                    dst.close()
                _retire_journal(target)
                os.replace(tmp, target)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
    finally:
        src.close()
    return revision
