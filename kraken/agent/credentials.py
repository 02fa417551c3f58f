"""The agent's own credential: issued by the server when the agent enrolls with the shared token,
kept in ``<data dir>/agent-credential`` (mode 0600, created with O_EXCL: never overwritten, never
readable by others), and used instead of the shared token from then on."""

from __future__ import annotations

import os
from pathlib import Path

FILENAME = "agent-credential"


def credential_path(data_dir: Path) -> Path:
    return data_dir / FILENAME


def load(path: Path) -> str | None:
    """The stored credential, or None when the agent has not enrolled yet."""
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        return None
    if not value:
        raise PermissionError(f"the agent credential file {path} is empty: delete it to enroll again")
    return value


def save(path: Path, credential: str) -> None:
    """Write a new credential; fails (FileExistsError) rather than replace one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (credential + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
