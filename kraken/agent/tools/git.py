"""Tool ``git``: clone a repository (URL, file:// or local path) into the job's directory."""

from __future__ import annotations

import posixpath
from typing import Any

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
        },
        "required": ["checkout"],
    }

    async def run(self, ctx: ToolContext, fields: dict[str, Any]) -> StepOutcome:
        url: str = fields["checkout"]
        dest = fields.get("destination") or default_destination(url)
        argv = ["git", "clone", "--progress"]
        if fields.get("branch"):
            argv += ["--branch", fields["branch"]]
        if fields.get("depth") and not fields.get("commit"):
            argv += ["--depth", str(fields["depth"])]
        argv += [url, dest]
        await ctx.log("$ " + " ".join(argv))
        res = await ctx.executor.exec(argv, timeout=ctx.timeout, on_line=ctx.log)
        if res.cancelled:
            return StepOutcome("cancelled", "cancelled", res.exit_code)
        if res.timed_out:
            return StepOutcome("timeout", f"git clone timed out after {ctx.timeout:g}s")
        if res.exit_code == 127:
            return StepOutcome("error", "git is not installed in this environment", 127)
        if res.exit_code != 0:
            return StepOutcome("failed", f"git clone of {url} failed (exit code {res.exit_code})", res.exit_code)
        if fields.get("commit"):
            res = await ctx.executor.exec(
                ["git", "checkout", "--detach", fields["commit"]], cwd=dest, timeout=ctx.timeout, on_line=ctx.log
            )
            if not res.ok:
                return StepOutcome("failed", f"git checkout {fields['commit']} failed", res.exit_code)
        head = await _head(ctx, dest)
        if head:
            await ctx.log(f"checked out {head}")
            await ctx.send({"type": "step_info", "data": {"commit": head, "repo": url}})
        return StepOutcome("passed", None, 0)


async def _head(ctx: ToolContext, dest: str) -> str | None:
    lines: list[str] = []

    async def keep(line: str) -> None:
        lines.append(line)

    res = await ctx.executor.exec(["git", "rev-parse", "HEAD"], cwd=dest, timeout=30, on_line=keep)
    return lines[0].strip() if res.ok and lines else None
