"""Tool ``pytest``: one pytest process for the whole selection, results from its JUnit XML report.

Test failures do not fail the step (the results carry them); a pytest that cannot run
(missing interpreter or plugin, usage error, no report) does, with the reason.
"""

from __future__ import annotations

import shlex
import uuid
from typing import Any

from kraken.agent.tools.base import StepOutcome, Tool, ToolContext
from kraken.agent.tools.registry import register
from kraken.results.collect import ResultSender, stream_junit

_EXIT = {
    2: "pytest was interrupted",
    3: "pytest hit an internal error",
    4: "pytest usage error (bad arguments or plugin)",
}


def _words(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return shlex.split(value)


@register
class PytestTool(Tool):
    name = "pytest"
    description = "Run pytest once for the selection (params) and collect every test result."
    fields_schema = {
        "type": "object",
        "properties": {
            "params": {
                "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
                "description": "arguments for pytest: test selection, -k, -m, ...",
            },
            "cwd": {"type": "string"},
            "pythonpath": {
                "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
            },
            "pytest_exe": {"type": "string", "minLength": 1, "description": "default: python3 -m pytest"},
            "env": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
        },
        "additionalProperties": False,
    }

    async def run(self, ctx: ToolContext, fields: dict[str, Any]) -> StepOutcome:
        exe = _words(fields.get("pytest_exe")) or ["python3", "-m", "pytest"]
        report = f"{ctx.executor.workdir}/.kraken/pytest-{ctx.step_index}-{uuid.uuid4().hex[:8]}.xml"
        argv = [*exe, *_words(fields.get("params")), f"--junitxml={report}"]
        env = {k: str(v) for k, v in (fields.get("env") or {}).items()}
        pythonpath = fields.get("pythonpath")
        if pythonpath:
            env["PYTHONPATH"] = ":".join(_words(pythonpath) if isinstance(pythonpath, list) else [pythonpath])
        await ctx.log("$ " + shlex.join(argv))
        res = await ctx.executor.exec(argv, cwd=fields.get("cwd"), env=env, timeout=ctx.timeout, on_line=ctx.log)
        if res.cancelled:
            return StepOutcome("cancelled", "cancelled", res.exit_code)
        if res.exit_code == 127 or (res.exit_code == 1 and not await _exists(ctx, report) and not res.timed_out):
            return StepOutcome("error", f"cannot run {shlex.join(exe)}: not found or not runnable here", res.exit_code)
        sender = ResultSender(ctx, self.name)
        err = await stream_junit(ctx, report, sender, shown="pytest report")
        await sender.flush()
        await ctx.log(f"collected {sender.summary()}")
        if res.timed_out:
            return StepOutcome("timeout", f"pytest timed out after {ctx.timeout:g}s", res.exit_code)
        if err is not None and sender.total == 0:
            if res.exit_code in _EXIT:
                why = _EXIT[res.exit_code]
                return StepOutcome("error", f"{why} (exit code {res.exit_code}): see the step log", res.exit_code)
            if err.message.startswith("cannot read"):
                return StepOutcome(
                    "error", f"pytest wrote no report (exit code {res.exit_code}): see the step log", res.exit_code
                )
            return StepOutcome("error", str(err), res.exit_code)
        if res.exit_code in _EXIT:
            return StepOutcome("error", f"{_EXIT[res.exit_code]} (exit code {res.exit_code})", res.exit_code)
        if err is not None:
            return StepOutcome("error", str(err), res.exit_code)
        if res.exit_code == 5:
            return StepOutcome("passed", "no tests were collected", res.exit_code)
        if res.exit_code not in (0, 1):
            return StepOutcome("error", f"pytest exited with code {res.exit_code}", res.exit_code)
        return StepOutcome("passed", None, res.exit_code)


async def _exists(ctx: ToolContext, path: str) -> bool:
    res = await ctx.executor.exec(["/bin/sh", "-c", f"test -f {shlex.quote(path)}"], timeout=30)
    return res.exit_code == 0
