"""Recognising a full volume in the errors of SQLite, PostgreSQL and the file system, and the
space reserve that lets the control plane end jobs on a full volume."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import asyncpg
import sqlalchemy as sa

from kraken.core.diskspace import DISK_FULL_REASON, RESERVE_NAME, DiskSpace, is_disk_full


def test_disk_full_errors_are_recognised_through_wrappers() -> None:
    sqlite_full = sqlite3.OperationalError("database or disk is full")
    assert is_disk_full(sa.exc.OperationalError("INSERT ...", {}, sqlite_full))
    assert is_disk_full(asyncpg.exceptions.DiskFullError("could not extend file"))
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as exc:
            raise RuntimeError("upload failed") from exc
    except RuntimeError as wrapped:
        assert is_disk_full(wrapped)
    assert not is_disk_full(sa.exc.OperationalError("INSERT ...", {}, sqlite3.OperationalError("database is locked")))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))


def test_the_reserve_is_released_on_a_full_volume_and_made_anew_when_it_has_room(tmp_path: Path) -> None:
    disk = DiskSpace(tmp_path)
    reserve = tmp_path / RESERVE_NAME
    assert reserve.stat().st_size > 0 and reserve.stat().st_mode & 0o777 == 0o600
    assert not disk.status().full
    assert not disk.note_error(ValueError("not about space"))
    assert disk.note_error(OSError(errno.ENOSPC, "No space left on device"))
    assert not reserve.exists()
    status = disk.status()
    assert status.full and status.reason == DISK_FULL_REASON
    disk.note_write_ok()  # tmp_path's volume has room
    assert not disk.status().full and reserve.exists()


def test_without_a_directory_only_errors_tell() -> None:
    disk = DiskSpace(None)
    assert not disk.status().full
    disk.note_error(asyncpg.exceptions.DiskFullError("could not extend file"))
    assert disk.status().full
    disk.note_write_ok()
    assert not disk.status().full
