"""Tool ``junit_collect``: read JUnit/xUnit XML reports (pytest, Maven Surefire, go-junit-report,
ctest, ...) from the job's environment and send their results to the server."""

from __future__ import annotations

from typing import Any

from kraken.agent.tools.base import StepOutcome, Tool, ToolContext
from kraken.agent.tools.registry import register
from kraken.results.collect import ResultSender, check_glob, expand_glob, join_path, stream_junit


@register
class JUnitCollectTool(Tool):
    name = "junit_collect"
    description = "Collect test results from JUnit/xUnit XML files matching a glob."
    fields_schema = {
        "type": "object",
        "properties": {
            "file_glob": {"type": "string", "minLength": 1},
            "cwd": {"type": "string"},
        },
        "required": ["file_glob"],
        "additionalProperties": False,
    }

    async def run(self, ctx: ToolContext, fields: dict[str, Any]) -> StepOutcome:
        pattern: str = fields["file_glob"]
        cwd: str | None = fields.get("cwd")
        bad = check_glob(pattern)
        if bad:
            return StepOutcome("error", bad)
        files = await expand_glob(ctx, pattern, cwd)
        if not files:
            where = f" in {cwd}" if cwd else ""
            return StepOutcome("error", f"no file matches {pattern!r}{where}")
        sender = ResultSender(ctx, self.name)
        errors = []
        for f in files:
            before = sender.total
            err = await stream_junit(ctx, join_path(cwd, f), sender, shown=f)
            await ctx.log(f"{f}: {sender.total - before} results")
            if err is not None:
                errors.append(str(err))
                await ctx.log(f"error: {err}")
        await sender.flush()
        await ctx.log(f"collected {sender.summary()} from {len(files)} file(s)")
        if errors:
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            return StepOutcome("error", errors[0] + more)
        return StepOutcome("passed")
