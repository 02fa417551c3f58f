"""Stage code kept in a git repository (the original Kraken's "schema from repo").

A stage may name a repository (``repo_url``), a branch (``repo_branch``) and a file
(``schema_file``) instead of holding its code.  The server reads the file at each run's
evaluation: a shallow fetch of the branch into a bare cache repository under
``<data_dir>/stage-repos``, then the file at the fetched commit.  The commit is recorded on the run.

Values never read as options: the URL follows ``--``, the branch is one refspec word
(``+refs/heads/BRANCH:...``), the file is read as ``COMMIT:PATH``; on top of that ``check_source``
refuses a URL or branch starting with '-' and a path that leaves the repository.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kraken.agent.tools.git import token_url
from kraken.core.config import Settings
from kraken.core.db import Database
from kraken.models import Stage
from kraken.secrets import store as secrets_store
from kraken.stage.errors import StageSchemaError
from kraken.triggers.repository import git

FETCH_TIMEOUT = 60.0
MAX_FILE_BYTES = 1_000_000
# protocols git may use for a stage's repository (no ext::, fd::)
ALLOWED_PROTOCOLS = "file:git:http:https:ssh"

_settings: Settings | None = None
_locks: dict[Path, asyncio.Lock] = {}


def configure(settings: Settings) -> None:
    """Tell this process where its data dir is (``Runtime`` calls it for every role)."""
    global _settings
    _settings = settings


def cache_root() -> Path:
    global _settings
    if _settings is None:
        _settings = Settings()
    return _settings.data_dir / "stage-repos"


class RepoError(Exception):
    """The stage code could not be read from the repository; the message says what and where."""


@dataclass(frozen=True)
class RepoSource:
    url: str
    branch: str
    file: str
    token: str | None = None  # the access token's value (https URLs)

    @property
    def where(self) -> str:
        return f"{self.file} on branch '{self.branch}' of {self.url}"


def check_source(url: str, branch: str, file: str) -> tuple[str, str] | None:
    """``(field, problem)`` for a value that cannot name stage code in a repository, else None."""
    if not url.strip():
        return "repo_url", "is empty"
    if url.startswith("-"):
        return "repo_url", "must not start with '-'"
    if any(c in url for c in "\n\r\0"):
        return "repo_url", "must be one line"
    if not branch or branch.startswith("-") or not re.fullmatch(r"[A-Za-z0-9._/@+-]+", branch):
        return "repo_branch", "must be a branch name (letters, digits, '._/@+-'; not starting with '-')"
    if ".." in branch or branch.endswith((".lock", "/", ".")) or "//" in branch or branch.startswith("/"):
        return "repo_branch", "is not a valid branch name"
    path = PurePosixPath(file)
    if not file or file.startswith("/") or ".." in path.parts or "\0" in file or "\n" in file:
        return "schema_file", "must be a path inside the repository (relative, without '..')"
    return None


def _local_path(url: str) -> Path | None:
    """The directory a ``file://`` URL or a plain path names (None for a remote URL)."""
    if url.startswith("file://"):
        return Path(url[len("file://") :])
    if "://" in url or re.match(r"^[^/]+:", url):  # a URL or scp-like host:path
        return None
    return Path(url)


def _inside_data_dir(url: str) -> bool:
    """A local URL into the server's own data dir (its caches hold other projects' repositories)."""
    path = _local_path(url)
    if path is None:
        return False
    data = cache_root().parent.resolve()
    return path.resolve().is_relative_to(data)


@contextlib.asynccontextmanager
async def _file_lock(path: Path) -> AsyncIterator[None]:
    """One fetch into a cache repository at a time across this machine's processes (the API and the
    background worker both evaluate runs): git's own lock files would make the second one fail."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _hidden(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text


async def read_stage_code(source: RepoSource, timeout: float = FETCH_TIMEOUT) -> tuple[str, str]:
    """Fetch the branch and read the file: ``(code, commit)``; ``RepoError`` saying what and where."""
    problem = check_source(source.url, source.branch, source.file)
    if problem:
        raise RepoError(f"{problem[0]} {problem[1]}")
    if _inside_data_dir(source.url):
        raise RepoError(f"{source.url} is inside the server's data dir: not a repository for stage code")
    url = source.url
    if source.token:
        with_token = token_url(url, source.token)
        if with_token is None:
            raise RepoError(f"an access token needs an http(s) or 'git@host:path' URL, not {url!r}")
        url = with_token
    mirror = cache_root() / hashlib.sha256(source.url.encode()).hexdigest()[:24]
    lock = _locks.setdefault(mirror, asyncio.Lock())
    env = {"GIT_ALLOW_PROTOCOL": ALLOWED_PROTOCOLS}
    ref = "refs/kraken/" + hashlib.sha256(source.branch.encode()).hexdigest()[:24]
    async with lock, _file_lock(mirror.with_suffix(".lock")):
        if not (mirror / "HEAD").exists():
            mirror.mkdir(parents=True, exist_ok=True, mode=0o700)
            code, out = await git("init", "--bare", "-q", str(mirror), env_extra=env)
            if code != 0:
                raise RepoError(f"cannot make the cache of {source.url}: {out[-300:]}")
        code, out = await git(
            "fetch", "-q", "--depth=1", "--no-tags", "--", url, f"+refs/heads/{source.branch}:{ref}",
            cwd=mirror, timeout=timeout, env_extra=env,
        )  # fmt: skip
        if code != 0:
            detail = _hidden(out, source.token)[-400:]
            if "couldn't find remote ref" in detail:
                raise RepoError(f"no branch '{source.branch}' in {source.url}")
            raise RepoError(f"cannot fetch branch '{source.branch}' of {source.url}: {detail}")
        code, out = await git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=mirror)
        commit = out.strip()
        if code != 0 or not re.fullmatch(r"[0-9a-f]{40,64}", commit):
            raise RepoError(f"no commit fetched for branch '{source.branch}' of {source.url}")
    code, out = await git("cat-file", "-s", f"{commit}:{source.file}", cwd=mirror)
    if code != 0:
        raise RepoError(f"no file {source.file} in commit {commit[:12]} of branch '{source.branch}' of {source.url}")
    if int(out.strip() or 0) > MAX_FILE_BYTES:
        raise RepoError(f"{source.where}: the file is larger than {MAX_FILE_BYTES} bytes")
    code, out = await git("cat-file", "blob", f"{commit}:{source.file}", cwd=mirror)
    if code != 0:
        raise RepoError(f"cannot read {source.where}: {out[-300:]}")
    return out, commit


async def access_token(session: AsyncSession, project_id: int, name: str | None) -> str | None:
    """The value of the project's simple secret ``name`` (None without a name); ``RepoError`` when
    the project has no such secret."""
    if not name:
        return None
    secret = (await secrets_store.project_secrets(session, project_id, [name])).get(name)
    if secret is None or secret.get("kind") != "simple" or not secret.get("value"):
        raise RepoError(f"repo_access_token: the project has no simple secret named '{name}'")
    return str(secret["value"])


async def stage_source(session: AsyncSession, stage: Stage, project_id: int) -> RepoSource:
    """Where a repository stage's code is, with its access token's value."""
    return RepoSource(
        url=stage.repo_url or "",
        branch=stage.repo_branch or "",
        file=stage.schema_file or "",
        token=await access_token(session, project_id, stage.repo_access_token),
    )


def code_error(err: StageSchemaError, source: RepoSource, commit: str) -> StageSchemaError:
    """``err`` of code read from a repository, its message naming the file and the commit."""
    where = f"{source.file}" + (f" line {err.line}" if err.line is not None else "")
    return StageSchemaError(
        f"{where} (commit {commit[:12]} of {source.url}): {err.message}",
        line=err.line, column=err.column, path=err.path,
    )  # fmt: skip


async def read_for_run(db: Database, stage: Stage, project_id: int) -> tuple[str, RepoSource, str]:
    """A run's evaluation: ``(code, source, commit)`` of a repository stage, read now."""
    async with db.session(quick=True) as session:
        source = await stage_source(session, stage, project_id)
    code, commit = await read_stage_code(source)
    return code, source, commit


def unsaved_change(stage: Stage, schema: dict[str, Any]) -> None:
    """The stage graph and the triggers are taken from the file when the stage is saved: a file whose
    ``parent`` or ``triggers`` changed since is refused (``StageSchemaError``), never half used."""
    for key, saved, default in (("parent", stage.parent, "root"), ("triggers", stage.triggers, {})):
        if schema.get(key, default) != saved:
            raise StageSchemaError(
                f"the file changes '{key}' (saved: {saved!r}); save the stage again to take the new "
                f"{key} in (the stage graph and the triggers are read when a stage is saved)",
                path=key,
            )
