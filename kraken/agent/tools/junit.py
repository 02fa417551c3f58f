"""Tool ``junit_collect``: read JUnit/xUnit XML reports (pytest, Maven Surefire, go-junit-report,
ctest, ...) from the job's environment and send their results to the server."""

from __future__ import annotations

from typing import Any

from kraken.agent.tools.base import StepOutcome, Tool, ToolContext
from kraken.agent.tools.registry import register
from kraken.results.collect import (
    FILE_GLOB_FIELDS,
    ResultSender,
    first_error,
    join_path,
    matching_files,
    stream_junit,
)


@register
class JUnitCollectTool(Tool):
    name = "junit_collect"
    description = "Collect test results from JUnit/xUnit XML files matching a glob."
    fields_schema = FILE_GLOB_FIELDS

    async def run(self, ctx: ToolContext, fields: dict[str, Any]) -> StepOutcome:
        files, problem = await matching_files(ctx, fields)
        if problem:
            return StepOutcome("error", problem)
        cwd: str | None = fields.get("cwd")
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
            return StepOutcome("error", first_error(errors))
        return StepOutcome("passed")
