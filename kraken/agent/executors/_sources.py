"""Bringing a git repository of the agent's host into a job's environment.

The direct executor sees the host's paths, so ``git clone /srv/repo`` works as is.
A container does not: for a local URL (a path or ``file://``) the repository's
git directory is copied into the container (a streamed tar, see the executors'
``copy_in``) under ``<workdir>/.kraken/sources/`` and the clone is made from that
copy.  Copying beats bind-mounting here: the paths are only known when the step
runs (after the container was created, and a Docker container cannot gain mounts
later), the copy belongs to root inside the container (git refuses repositories
owned by another user, which bind mounts from the host or LXD's id-shifting
produce), and the host's repository can never be written to from a job.

Only the git directory is copied (objects and refs: what a clone reads), not the
host's working tree.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from typing import Protocol, runtime_checkable

from kraken.agent.executors._container import SOURCES_DIR, local_repo_path
from kraken.agent.executors.base import Executor


@runtime_checkable
class CopiesIn(Protocol):
    """An executor that can copy host files in (the container executors)."""

    async def copy_in(self, host_path: str, path: str) -> str: ...


def _git_dir(repo: str) -> str:
    dot_git = os.path.join(repo, ".git")
    if os.path.isdir(dot_git):
        return dot_git  # a work tree: its .git directory
    return repo  # a bare repository, or a .git file (worktree): copy it all


async def clone_source(executor: Executor, url: str) -> str:
    """What to pass to ``git clone`` inside the executor's environment for ``url``.

    Remote URLs and executors that share the host's filesystem get ``url`` back.
    """
    if not isinstance(executor, CopiesIn):
        return url
    repo = local_repo_path(url)
    if repo is None:
        return url
    name = os.path.basename(repo.rstrip("/")) or "repo"
    name = name[:-4] if name.endswith(".git") else name
    digest = hashlib.sha1(repo.encode()).hexdigest()[:8]
    dest = posixpath.join(SOURCES_DIR, f"{name}-{digest}.git")
    return await executor.copy_in(_git_dir(repo), dest)
