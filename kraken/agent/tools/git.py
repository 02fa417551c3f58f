"""Tool ``git``: clone a repository (URL, file:// or local path) into the job's directory.

``ssh-key``: the name of a project secret of kind ``ssh-key`` used for private repositories over
ssh (its user, when set, is the ssh login); the key is written into the environment for the
clone only.
"""

from __future__ import annotations

import posixpath
from typing import Any

from kraken.agent.executors._sources import clone_source
from kraken.agent.tools.base import StepOutcome, Tool, ToolContext
from kraken.agent.tools.registry import register


def default_destination(url: str) -> str:
    base = posixpath.basename(url.rstrip("/"))
    return base[:-4] if base.endswith(".git") else base or "repo"


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
        },
        "required": ["checkout"],
    }

    async def run(self, ctx: ToolContext, fields: dict[str, Any]) -> StepOutcome:
        url: str = fields["checkout"]
        dest = fields.get("destination") or default_destination(url)
        argv = ["git", "clone", "--progress"]
        if fields.get("branch"):
            argv += ["--branch", fields["branch"]]
        shallow = bool(fields.get("depth")) and not fields.get("commit")
        if shallow:
            argv += ["--depth", str(fields["depth"])]
        # A repository on the agent's host is copied into a container first (see _sources).
        source = await clone_source(ctx.executor, url)
        # git ignores --depth for a plain local path; file:// makes it honour it
        argv += [f"file://{source}" if shallow and source != url else source, dest]
        await ctx.log("$ " + " ".join(argv))
        env, problem = await _ssh_env(ctx, fields.get("ssh-key") or fields.get("ssh_key"))
        if problem:
            return StepOutcome("error", problem)
        try:
            res = await ctx.executor.exec(argv, env=env, timeout=ctx.timeout, on_line=ctx.log)
        finally:
            if env:
                await ctx.executor.exec(["rm", "-f", env["KRAKEN_SSH_KEY_FILE"]], timeout=30)
        if res.cancelled:
            return StepOutcome("cancelled", "cancelled", res.exit_code)
        if res.timed_out:
            return StepOutcome("timeout", f"git clone timed out after {ctx.timeout:g}s")
        if res.exit_code == 127:
            return StepOutcome("error", "git is not installed in this environment", 127)
        if res.exit_code != 0:
            return StepOutcome("failed", f"git clone of {url} failed (exit code {res.exit_code})", res.exit_code)
        if source != url:  # point origin at the real repository, not the copy
            await ctx.executor.exec(["git", "remote", "set-url", "origin", url], cwd=dest, timeout=30)
        if fields.get("commit"):
            res = await ctx.executor.exec(
                ["git", "checkout", "--detach", fields["commit"]], cwd=dest, timeout=ctx.timeout, on_line=ctx.log
            )
            if not res.ok:
                return StepOutcome("failed", f"git checkout {fields['commit']} failed", res.exit_code)
        head, branch = await _head(ctx, dest)
        if head:
            await ctx.log(f"checked out {head}")
            branch = fields.get("branch") or branch  # reported: the flow records what it ran on
            await ctx.info({"commit": head, "repo": url, "branch": branch})
        return StepOutcome("passed", None, 0)


async def _ssh_env(ctx: ToolContext, secret_name: str | None) -> tuple[dict[str, str], str | None]:
    """GIT_SSH_COMMAND using the ssh-key secret ``secret_name`` (written to a 0600 file)."""
    if not secret_name:
        return {}, None
    secret = (ctx.extra.get("secrets") or {}).get(secret_name)
    if not secret or secret.get("kind") != "ssh-key":
        return {}, f"no ssh-key secret named '{secret_name}' was given to this job"
    key = str(secret.get("key") or "")
    rel = f".kraken/ssh-key-{ctx.step_index}"
    await ctx.executor.write_file(rel, (key.rstrip("\n") + "\n").encode(), 0o600)
    path = f"{ctx.executor.workdir}/{rel}"
    ssh = (
        f"ssh -i {path} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=accept-new"
        f" -o UserKnownHostsFile={ctx.executor.workdir}/.kraken/known_hosts"
    )
    if secret.get("user"):
        ssh += f" -l {secret['user']}"
    await ctx.log(f"using ssh key from secret '{secret_name}'")
    return {"GIT_SSH_COMMAND": ssh, "KRAKEN_SSH_KEY_FILE": path}, None


async def _head(ctx: ToolContext, dest: str) -> tuple[str | None, str | None]:
    """The checked-out commit and branch (None when detached)."""
    lines: list[str] = []

    async def keep(line: str) -> None:
        lines.append(line.strip())

    argv = ["git", "rev-parse", "HEAD", "--abbrev-ref", "HEAD"]
    res = await ctx.executor.exec(argv, cwd=dest, timeout=30, on_line=keep)
    if not res.ok or not lines:
        return None, None
    return lines[0], lines[1] if len(lines) > 1 and lines[1] != "HEAD" else None
