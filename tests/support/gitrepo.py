"""Real git repositories on disk for tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

GIT_ID = ["-c", "user.name=Test", "-c", "user.email=test@localhost", "-c", "init.defaultBranch=main"]


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", *GIT_ID, "-C", str(repo), *args], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def make_repo(path: Path, files: dict[str, str], message: str = "initial") -> str:
    """Create a repository with the files committed on branch main; returns the commit."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", *GIT_ID, "init", "-q", str(path)], check=True)
    return commit(path, files, message)


def commit(path: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        f = path / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", message)
    return git(path, "rev-parse", "HEAD")
