"""Polling git repositories: ``git ls-remote`` for the heads, a bare mirror for the commit list."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

GIT_TIMEOUT = 120.0
MAX_COMMITS = 50


async def git(
    *args: str, cwd: Path | None = None, timeout: float = GIT_TIMEOUT, env_extra: dict[str, str] | None = None
) -> tuple[int, str]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_SSH_COMMAND": "ssh -o BatchMode=yes", **(env_extra or {})}
    proc = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=str(cwd) if cwd else None,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return -1, f"git {args[0]} timed out after {timeout:g} s"
    if proc.returncode != 0:
        return proc.returncode or 1, err.decode(errors="replace").strip()
    return 0, out.decode(errors="replace")


def ref_name(branch: str | None) -> str:
    return f"refs/heads/{branch}" if branch else "HEAD"


async def remote_head(url: str, branch: str | None) -> str | None:
    """The commit ``branch`` (or HEAD) points to in the remote repository, or None."""
    ref = ref_name(branch)
    code, out = await git("ls-remote", "--", url, ref)
    if code != 0:
        log.warning("repository trigger: git ls-remote %s %s failed: %s", url, ref, out[-500:])
        return None
    for line in out.splitlines():
        sha, _, name = line.partition("\t")
        if name == ref:
            return sha
    return None


async def new_commits(mirrors: Path, url: str, branch: str | None, old: str, new: str) -> list[dict[str, Any]]:
    """The commits after ``old`` up to ``new`` (newest first, at most MAX_COMMITS); on any
    trouble just ``new``."""
    fallback = [{"id": new}]
    mirror, problem = await fetch_mirror(mirrors, url, f"+{ref_name(branch)}:refs/kraken/head")
    if mirror is None:
        log.warning("repository trigger: %s", problem)
        return fallback
    code, out = await git("log", f"--max-count={MAX_COMMITS}", f"--format={LOG_FORMAT}", f"{old}..{new}", cwd=mirror)
    if code != 0:
        return fallback
    return parse_log(out) or fallback


LOG_FORMAT = "%H%x1f%an%x1f%ae%x1f%aI%x1f%s"  # what parse_log reads


def parse_log(out: str) -> list[dict[str, Any]]:
    """``git log --format=LOG_FORMAT`` output as commits ``{id, author, email, timestamp, message}``."""
    commits = []
    for line in out.splitlines():
        parts = line.split("\x1f")
        if len(parts) == 5:
            commits.append(
                {"id": parts[0], "author": parts[1], "email": parts[2], "timestamp": parts[3], "message": parts[4]}
            )
    return commits


async def fetch_mirror(mirrors: Path, url: str, refspec: str) -> tuple[Path | None, str]:
    """A bare mirror of ``url`` under ``mirrors`` (made on first use) after fetching ``refspec``
    into it; (None, why) when the repository cannot be read."""
    mirror = mirrors / hashlib.sha1(url.encode()).hexdigest()[:16]
    if not (mirror / "HEAD").exists():
        mirror.mkdir(parents=True, exist_ok=True)
        code, out = await git("init", "--bare", "-q", str(mirror))
        if code != 0:
            return None, f"cannot make a mirror of {url}: {out[-300:]}"
    code, out = await git("fetch", "-q", "--no-tags", "--", url, refspec, cwd=mirror)
    if code != 0:
        return None, f"fetching {url} failed: {out[-300:]}"
    return mirror, ""
