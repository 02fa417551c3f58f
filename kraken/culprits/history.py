"""The commits of a regression's range, read on the server from the branch's repository.

The repository is fetched into a bare mirror under ``<data_dir>/culprit-repos`` (the same git
helpers as the repository poll trigger, ``kraken.triggers.repository``); the range is
``git log --first-parent --reverse good..bad``: oldest first, ending with ``bad``.  Merges count
as one commit (their first parent's line is bisected).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kraken.triggers.repository import LOG_FORMAT, fetch_mirror, git, parse_log

MAX_RANGE = 1000  # commits; a longer range is reported, not bisected


class RangeError(Exception):
    """The range cannot be read: the message says why (repository unreachable, unknown commit)."""


async def commit_range(mirrors: Path, url: str, good: str, bad: str) -> list[dict[str, Any]]:
    """The commits after ``good`` up to ``bad``, oldest first (at most MAX_RANGE + 1)."""
    mirror, problem = await fetch_mirror(mirrors, url, "+refs/heads/*:refs/culprit/heads/*")
    if mirror is None:
        raise RangeError(f"the repository cannot be read: {problem}")
    for sha in (good, bad):
        code, _ = await git("cat-file", "-e", f"{sha}^{{commit}}", cwd=mirror)
        if code != 0:
            raise RangeError(f"commit {sha} is not in {url}")
    code, _ = await git("merge-base", "--is-ancestor", good, bad, cwd=mirror)
    if code != 0:
        raise RangeError(f"the passing commit {good} is not an ancestor of the failing commit {bad}")
    code, out = await git(
        "log",
        "--first-parent",
        f"--max-count={MAX_RANGE + 1}",
        f"--format={LOG_FORMAT}",
        f"{good}..{bad}",
        cwd=mirror,
    )
    if code != 0:
        raise RangeError(f"git log {good}..{bad} failed: {out[-300:]}")
    commits = list(reversed(parse_log(out)))
    if not commits or commits[-1]["id"] != bad:
        raise RangeError(f"no commits between {good} and {bad}")
    return commits
