"""Private files and directories: Kraken's own state is readable by its own user only.

The data dir is 0700 and the SQLite database 0600 (SQLite gives its ``-wal`` and ``-shm``
files the database's mode); generated secrets are created with ``O_EXCL`` and mode 0600, so
there is never a moment when they exist with wider permissions.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> None:
    """Create ``path`` (and its parents) with mode 0700; tighten it when it exists wider."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s was readable by others (mode %o): now 0700", path, mode)
        path.chmod(DIR_MODE)


def private_file(path: Path) -> None:
    """Make sure ``path`` exists with mode 0600 (created empty with O_EXCL when missing)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s was readable by others (mode %o): now 0600", path, mode)
        path.chmod(FILE_MODE)


def write_new_secret_file(path: Path, text: str) -> None:
    """Write ``text`` to a new file created with O_EXCL and mode 0600 from the start.

    A file left there by an earlier installation is removed first (its content is stale)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
