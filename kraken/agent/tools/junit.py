"""Tool ``junit_collect``: read JUnit/xUnit XML reports (pytest, Maven Surefire, go-junit-report,
ctest, ...) from the job's environment and send their results to the server.

With ``"rerun_failed": N`` and a ``rerun_command`` the failed tests run again (see
``kraken.agent.tools.reruns``): the command runs in the step's ``cwd`` under ``/bin/sh -c`` with
``KK_RERUN_FILE`` (a file naming the failed tests, one a line, as the report named them:
``classname::name``) and ``KK_RERUN_REPORT`` (where it writes the JUnit XML report of the rerun);
its exit code does not matter, a missing report ends the step with ``error``."""

from __future__ import annotations

import posixpath
import uuid
from typing import Any

from kraken.agent.tools import reruns
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

FIELDS: dict[str, Any] = {
    **FILE_GLOB_FIELDS,
    "properties": {
        **FILE_GLOB_FIELDS["properties"],
        **reruns.RERUN_FIELDS,
        "rerun_command": {
            "type": "string",
            "minLength": 1,
            "description": "shell command that reruns the tests named in $KK_RERUN_FILE into $KK_RERUN_REPORT",
        },
    },
    # a rerun needs its command, and a command without reruns would never run
    "dependentRequired": {"rerun_command": ["rerun_failed"]},
    "dependentSchemas": {
        "rerun_failed": {
            "if": {"properties": {"rerun_failed": {"minimum": 1}}},
            "then": {"required": ["rerun_command"]},
        }
    },
}


@register
class JUnitCollectTool(Tool):
    name = "junit_collect"
    description = "Collect test results from JUnit/xUnit XML files matching a glob."
    fields_schema = FIELDS

    async def run(self, ctx: ToolContext, fields: dict[str, Any]) -> StepOutcome:
        files, problem = await matching_files(ctx, fields)
        if problem:
            return StepOutcome("error", problem)
        cwd: str | None = fields.get("cwd")
        sender = ResultSender(ctx, self.name)
        times = reruns.prepare(sender, fields)
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
        if times:

            async def again(failed: list[str]) -> StepOutcome:
                return await _rerun(ctx, fields["rerun_command"], cwd, failed, sender)

            outcome = await reruns.rerun_failed(ctx, sender, times, again)
            if outcome is not None:
                return outcome
        return StepOutcome("passed")


async def _rerun(
    ctx: ToolContext, command: str, cwd: str | None, failed: list[str], sender: ResultSender
) -> StepOutcome:
    base = posixpath.join(ctx.executor.workdir, ".kraken", f"rerun-{ctx.step_index}-{uuid.uuid4().hex[:8]}")
    names, report = f"{base}.txt", f"{base}.xml"
    await ctx.executor.write_file(names, ("\n".join(failed) + "\n").encode())
    await ctx.log(f"$ {command}")
    env = {"KK_RERUN_FILE": names, "KK_RERUN_REPORT": report}
    res = await ctx.executor.exec(["/bin/sh", "-c", command], cwd=cwd, env=env, timeout=ctx.timeout, on_line=ctx.log)
    if res.cancelled:
        return StepOutcome("cancelled", "cancelled", res.exit_code)
    if res.timed_out:
        return StepOutcome("timeout", f"rerun_command timed out after {ctx.timeout:g}s", res.exit_code)
    before = sender.total
    err = await stream_junit(ctx, report, sender, shown="rerun report")
    await ctx.log(f"rerun report: {sender.total - before} results")
    if err is not None:
        why = "wrote no report to $KK_RERUN_REPORT" if err.message.startswith("cannot read") else str(err)
        return StepOutcome("error", f"rerun_command {why} (exit code {res.exit_code})", res.exit_code)
    return StepOutcome("passed")
