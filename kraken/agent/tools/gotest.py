"""Tool ``gotest``: run ``go test -json`` and send each test's result (package-level build
failures become an ``error`` result named ``<package>::[package]``)."""

from __future__ import annotations

import shlex
from typing import Any

from kraken.agent.tools.base import StepOutcome, Tool, ToolContext
from kraken.agent.tools.registry import register
from kraken.results.collect import ResultSender
from kraken.results.parsers.gotest import GoTestParser


def _words(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else shlex.split(value)


@register
class GoTestTool(Tool):
    name = "gotest"
    description = "Run go test -json and collect every test result."
    fields_schema = {
        "type": "object",
        "properties": {
            "params": {
                "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
                "description": "arguments after go test -json; default ./...",
            },
            "cwd": {"type": "string"},
            "go_exe": {"type": "string", "minLength": 1},
            "env": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
        },
        "additionalProperties": False,
    }

    async def run(self, ctx: ToolContext, fields: dict[str, Any]) -> StepOutcome:
        exe = _words(fields.get("go_exe")) or ["go"]
        argv = [*exe, "test", "-json", *(_words(fields.get("params")) or ["./..."])]
        env = {k: str(v) for k, v in (fields.get("env") or {}).items()}
        parser = GoTestParser()
        sender = ResultSender(ctx, self.name)

        async def on_line(line: str) -> None:
            results, shown = parser.feed_line(line)
            if shown is not None:
                await ctx.log(shown)
            for r in results:
                await sender.add(r)

        await ctx.log("$ " + shlex.join(argv))
        res = await ctx.executor.exec(argv, cwd=fields.get("cwd"), env=env, timeout=ctx.timeout, on_line=on_line)
        await sender.add_all(parser.close())
        await sender.flush()
        await ctx.log(f"collected {sender.summary()}")
        if res.cancelled:
            return StepOutcome("cancelled", "cancelled", res.exit_code)
        if res.timed_out:
            return StepOutcome("timeout", f"go test timed out after {ctx.timeout:g}s", res.exit_code)
        if res.exit_code == 127:
            return StepOutcome("error", f"cannot run {shlex.join(exe)}: not found in this environment", 127)
        if parser.events == 0:
            return StepOutcome("error", f"go test produced no test events (exit code {res.exit_code})", res.exit_code)
        return StepOutcome("passed", None, res.exit_code)
