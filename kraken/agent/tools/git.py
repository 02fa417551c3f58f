"""Tool ``git``: clone a repository (URL, file:// or local path) into the job's directory.

- ``ssh-key``: the name of a project secret of kind ``ssh-key`` used for private repositories
  over ssh (its user, when set, is the ssh login); the key is written into the environment for
  the clone only.
- ``access-token``: the name of a simple secret holding a GitHub/GitLab token; an https URL
  (or ``git@host:path``) is cloned as ``https://TOKEN@host/path``.  ``origin`` keeps the URL
  without the token.
- ``git_cfg``: ``{"key": "value"}`` passed as ``git -c key=value`` to the clone.

Values from stage code and trigger data (URL, branch, commit, destination) are never read
as options: the URL and destination follow ``--``, the branch is one ``--branch=...`` word
and the commit is resolved to its hash by ``git rev-parse --end-of-options`` first.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from kraken.agent.executors._sources import clone_source
from kraken.agent.tools.base import StepOutcome, Tool, ToolContext
from kraken.agent.tools.registry import register
from kraken.agent.tools.sshkey import remove_key_file, ssh_key_env

_SCP_LIKE = re.compile(r"^(?:[A-Za-z0-9._-]+@)?(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/].*)$")


def default_destination(url: str) -> str:
    base = posixpath.basename(url.rstrip("/"))
    base = base[:-4] if base.endswith(".git") else base
    return base.lstrip("-") or "repo"


def token_url(url: str, token: str) -> str | None:
    """``url`` with ``token`` as its https user, or None for URLs a token cannot go into."""
    for scheme in ("https://", "http://"):
        if url.startswith(scheme):
            rest = url[len(scheme) :]
            if "@" in rest.split("/", 1)[0]:  # drop a user already in the URL
                rest = rest.split("@", 1)[1]
            return f"{scheme}{token}@{rest}"
    scp = _SCP_LIKE.match(url)
    if scp and not url.startswith(("/", ".", "file:")):
        return f"https://{token}@{scp.group('host')}/{scp.group('path')}"
    return None


@register
class GitTool(Tool):
    name = "git"
    description = "Check out a git repository."
    fields_schema = {
        "type": "object",
        "properties": {
            "checkout": {"type": "string", "minLength": 1},
            "branch": {"type": "string"},
            "destination": {"type": "string"},
            "commit": {"type": "string"},
            "depth": {"type": "integer", "minimum": 1},
            "ssh-key": {"type": "string", "minLength": 1},
            "ssh_key": {"type": "string", "minLength": 1},
            "access-token": {"type": "string", "minLength": 1},
            "git_cfg": {
                "type": "object",
                "propertyNames": {"pattern": r"^[A-Za-z0-9][^=\s]*$"},
                "additionalProperties": {"type": ["string", "number", "boolean"]},
            },
        },
        "required": ["checkout"],
        "additionalProperties": False,
    }

    async def run(self, ctx: ToolContext, fields: dict[str, Any]) -> StepOutcome:
        url: str = fields["checkout"]
        dest = fields.get("destination") or default_destination(url)
        argv = ["git"]
        for key, value in (fields.get("git_cfg") or {}).items():
            argv += ["-c", f"{key}={_cfg_value(value)}"]
        argv += ["clone", "--progress"]
        if fields.get("branch"):
            argv.append(f"--branch={fields['branch']}")
        shallow = bool(fields.get("depth")) and not fields.get("commit")
        if shallow:
            argv += ["--depth", str(fields["depth"])]
        # A repository on the agent's host is copied into a container first (see _sources).
        source = await clone_source(ctx.executor, url)
        # git ignores --depth for a plain local path; file:// makes it honour it
        source = f"file://{source}" if shallow and source != url else source
        shown = [*argv, "--", source, dest]
        token_name = fields.get("access-token")
        if token_name:
            token = _simple_secret(ctx, token_name)
            with_token = token_url(source, token)
            if with_token is None:
                return StepOutcome("error", f"an access token needs an http(s) or 'git@host:path' URL, not {url!r}")
            source = with_token
        argv += ["--", source, dest]
        await ctx.log("$ " + " ".join(shown))
        env, problem = await ssh_key_env(ctx, fields.get("ssh-key") or fields.get("ssh_key"))
        if problem:
            return StepOutcome("error", problem)
        try:
            res = await ctx.executor.exec(argv, env=env, timeout=ctx.timeout, on_line=ctx.log)
        finally:
            await remove_key_file(ctx, env)
        if res.cancelled:
            return StepOutcome("cancelled", "cancelled", res.exit_code)
        if res.timed_out:
            return StepOutcome("timeout", f"git clone timed out after {ctx.timeout:g}s")
        if res.exit_code == 127:
            return StepOutcome("error", "git is not installed in this environment", 127)
        if res.exit_code != 0:
            return StepOutcome("failed", f"git clone of {url} failed (exit code {res.exit_code})", res.exit_code)
        if source != url:  # point origin at the real repository (not the copy, no token)
            await ctx.executor.exec(["git", "remote", "set-url", "--", "origin", url], cwd=dest, timeout=30)
        return await _checkout(ctx, dest, url, fields)


async def _checkout(ctx: ToolContext, dest: str, url: str, fields: dict[str, Any]) -> StepOutcome:
    """Check out ``commit`` (if given) in the clone, and report what was checked out: the flow
    records the repository state it ran on."""
    if fields.get("commit"):
        sha = await _resolve_commit(ctx, dest, fields["commit"])
        if sha is None:
            return StepOutcome("failed", f"no commit {fields['commit']!r} in {url}")
        res = await ctx.executor.exec(
            ["git", "checkout", "--detach", sha], cwd=dest, timeout=ctx.timeout, on_line=ctx.log
        )
        if not res.ok:
            return StepOutcome("failed", f"git checkout {fields['commit']} failed", res.exit_code)
    head, branch = await _head(ctx, dest)
    if head:
        await ctx.log(f"checked out {head}")
        await ctx.info({"commit": head, "repo": url, "branch": fields.get("branch") or branch})
    return StepOutcome("passed", None, 0)


def _cfg_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _simple_secret(ctx: ToolContext, value: str) -> str:
    """The token of ``access-token``: the value of the simple secret it names, else the value itself
    (the server replaced a ``#{secrets.NAME}`` / ``#{KK_SECRET_SIMPLE_NAME}`` reference with it and
    refuses a plain name that is no secret of the project)."""
    secret = (ctx.extra.get("secrets") or {}).get(value)
    if secret and secret.get("kind", "simple") == "simple" and secret.get("value"):
        return str(secret["value"])
    return value


async def _rev_parse(ctx: ToolContext, dest: str, *args: str) -> str | None:
    lines: list[str] = []

    async def keep(line: str) -> None:
        lines.append(line.strip())

    res = await ctx.executor.exec(["git", "rev-parse", *args], cwd=dest, timeout=30, on_line=keep)
    return lines[0].strip() if res.ok and lines else None


async def _head(ctx: ToolContext, dest: str) -> tuple[str | None, str | None]:
    """The checked-out commit and branch (None when detached)."""
    commit = await _rev_parse(ctx, dest, "HEAD")
    branch = await _rev_parse(ctx, dest, "--abbrev-ref", "HEAD") if commit else None
    return commit, (branch if branch != "HEAD" else None)


async def _resolve_commit(ctx: ToolContext, dest: str, commit: str) -> str | None:
    """The full hash of ``commit`` (never read as an option), or None when there is no such commit."""
    sha = await _rev_parse(ctx, dest, "--verify", "--quiet", "--end-of-options", f"{commit}^{{commit}}")
    return sha if sha and re.fullmatch(r"[0-9a-f]{40,64}", sha) else None
