"""The server's data volume running out of space: telling it, and keeping room to end jobs.

A full volume makes SQLite (``database or disk is full``), PostgreSQL (SQLSTATE 53100) and the
artifact store (``ENOSPC``) fail.  ``is_disk_full`` recognises those errors wherever they are
caught; ``DiskSpace`` (one per ``Database``) remembers that the volume is full until a write
succeeds again, which ``GET /api/health`` reports (``degraded``, with ``DISK_FULL_REASON``) and
the ``kraken_data_volume_full`` metric shows.

With SQLite in a data dir, ``DiskSpace`` keeps a reserve file ``<data_dir>/space-reserve``
(``RESERVE_BYTES``).  The first disk-full error removes it, so that the control plane still has
room to end the jobs that cannot go on (with ``DISK_FULL_REASON``) and to record agents; once the
volume has room again (a write succeeds and the free space exceeds twice the reserve) the
reserve is made anew.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from kraken.observability import metrics

log = logging.getLogger(__name__)

DISK_FULL_REASON = "no space left on the server's data volume"
RESERVE_NAME = "space-reserve"
RESERVE_BYTES = 8 << 20
SQLSTATE_DISK_FULL = "53100"


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the volume is full."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if getattr(e, "sqlstate", None) == SQLSTATE_DISK_FULL or getattr(e, "pgcode", None) == SQLSTATE_DISK_FULL:
            return True
        text = str(e)
        if "database or disk is full" in text or "No space left on device" in text:
            return True
        e = getattr(e, "orig", None) or e.__cause__ or e.__context__
    return False


@dataclass
class SpaceStatus:
    full: bool
    reason: str | None
    free_bytes: int | None


class DiskSpace:
    """What this process knows about the space on its data volume (``directory``: None when the
    database is elsewhere, e.g. PostgreSQL, where only errors tell)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.full_since: float | None = None
        self.last_error: str | None = None
        if directory is not None:
            self._make_reserve()

    @property
    def reserve(self) -> Path | None:
        return self.directory / RESERVE_NAME if self.directory is not None else None

    def _make_reserve(self) -> None:
        path = self.reserve
        if path is None or (path.exists() and path.stat().st_size >= RESERVE_BYTES):
            return
        try:
            if shutil.disk_usage(path.parent).free < 2 * RESERVE_BYTES:
                return  # not now: it would take the last room there is
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.posix_fallocate(fd, 0, RESERVE_BYTES)
            finally:
                os.close(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                path.unlink()
            log.debug("no space reserve in %s: %s", path.parent, exc)

    def _free_reserve(self) -> None:
        path = self.reserve
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                log.warning("released the %d MB space reserve (%s) to end what cannot go on", RESERVE_BYTES >> 20, path)

    def note_error(self, exc: BaseException) -> bool:
        """Record ``exc`` when it says the volume is full (True then)."""
        if not is_disk_full(exc):
            return False
        if self.full_since is None:
            self.full_since = time.time()
            log.error("%s: %s", DISK_FULL_REASON, exc)
        self.last_error = str(exc)[:300]
        metrics.DATA_VOLUME_FULL.set(1)
        self._free_reserve()
        return True

    def note_write_ok(self) -> None:
        """A write went through: when the volume was full and has room again, say so and re-make
        the reserve."""
        if self.full_since is None:
            return
        if self.directory is not None and shutil.disk_usage(self.directory).free < 2 * RESERVE_BYTES:
            return  # a small write fitted; the volume is still nearly full
        log.warning("the server's data volume has room again (full for %.0f s)", time.time() - self.full_since)
        self.full_since = None
        self.last_error = None
        metrics.DATA_VOLUME_FULL.set(0)
        self._make_reserve()

    def status(self, extra_dirs: tuple[Path, ...] = ()) -> SpaceStatus:
        """Full when a write failed for want of space since the last write that went through, or
        when a local directory of the server's (data dir, artifacts) has less than the reserve free."""
        free: int | None = None
        for d in (self.directory, *extra_dirs):
            if d is None:
                continue
            with contextlib.suppress(OSError):
                n = shutil.disk_usage(d).free
                free = n if free is None else min(free, n)
        if self.full_since is not None:
            out = SpaceStatus(True, DISK_FULL_REASON, free)
        elif free is not None and free < RESERVE_BYTES:
            out = SpaceStatus(True, f"{DISK_FULL_REASON} ({free} bytes free)", free)
        else:
            out = SpaceStatus(False, None, free)
        metrics.DATA_VOLUME_FULL.set(1 if out.full else 0)
        return out
