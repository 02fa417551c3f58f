"""Tools ``ruff`` and ``pylint``: run the linter with JSON output and send its findings as issues.

The server matches each issue with the previous CI run's issues (same path, symbol and type,
line within ±5) to tell new issues from old ones.  Findings do not fail the step.
"""

from __future__ import annotations

import shlex
import uuid
from collections.abc import Callable
from typing import Any

from kraken.agent.tools.base import StepOutcome, Tool, ToolContext
from kraken.agent.tools.registry import register
from kraken.protocol import Issues
from kraken.results.collect import join_path, read_all
from kraken.results.parsers.issues import IssuesParseError, ParsedIssue, parse_pylint, parse_ruff

ISSUES_BATCH = 5000


def _words(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else shlex.split(value)


_LINT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "params": {
            "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
            "description": "paths and options; default: .",
        },
        "cwd": {"type": "string"},
        "exe": {"type": "string", "minLength": 1},
    },
    "additionalProperties": False,
}


async def send_issues(ctx: ToolContext, tool: str, issues: list[ParsedIssue]) -> None:
    """Always sends at least one message, so the server knows the linter ran (zero issues)."""
    for start in range(0, max(len(issues), 1), ISSUES_BATCH):
        batch = [i.wire() for i in issues[start : start + ISSUES_BATCH]]
        await ctx.send(Issues(step_index=ctx.step_index, tool=tool, issues=batch))


async def _run_linter(
    ctx: ToolContext,
    fields: dict[str, Any],
    tool: str,
    argv: list[str],
    parse: Callable[[bytes, str | None], list[ParsedIssue]],
    ok_codes: Callable[[int], bool],
) -> StepOutcome:
    cwd: str | None = fields.get("cwd")
    out = f".kraken/{tool}-{ctx.step_index}-{uuid.uuid4().hex[:8]}.json"
    out_abs = f"{ctx.executor.workdir}/{out}"
    script = f"mkdir -p {shlex.quote(ctx.executor.workdir)}/.kraken && exec {shlex.join(argv)} > {shlex.quote(out_abs)}"
    await ctx.log("$ " + shlex.join(argv))
    res = await ctx.executor.exec(["/bin/sh", "-c", script], cwd=cwd, timeout=ctx.timeout, on_line=ctx.log)
    if res.cancelled:
        return StepOutcome("cancelled", "cancelled", res.exit_code)
    if res.timed_out:
        return StepOutcome("timeout", f"{tool} timed out after {ctx.timeout:g}s", res.exit_code)
    if res.exit_code in (126, 127):
        return StepOutcome("error", f"cannot run {argv[0]}: not found in this environment", res.exit_code)
    if res.exit_code is None or not ok_codes(res.exit_code):
        return StepOutcome("error", f"{tool} failed (exit code {res.exit_code}): see the step log", res.exit_code)
    try:
        data = await read_all(ctx, out)
        base = join_path(ctx.executor.workdir, cwd or ".")
        issues = parse(data, base)
    except (IssuesParseError, OSError, ValueError) as exc:
        return StepOutcome("error", f"cannot read {tool} output: {exc}", res.exit_code)
    await send_issues(ctx, tool, issues)
    await ctx.log(f"{len(issues)} issues")
    return StepOutcome("passed", None, res.exit_code)


@register
class RuffTool(Tool):
    name = "ruff"
    description = "Run ruff check and collect its findings as issues."
    fields_schema = _LINT_SCHEMA

    async def run(self, ctx: ToolContext, fields: dict[str, Any]) -> StepOutcome:
        exe = _words(fields.get("exe")) or ["ruff"]
        argv = [*exe, "check", "--output-format", "json", "--exit-zero", *(_words(fields.get("params")) or ["."])]
        return await _run_linter(ctx, fields, self.name, argv, parse_ruff, lambda code: code == 0)


# The original Kraken's pylint fields beside ours: ``pylint_exe`` (alias of ``exe``), ``rcfile``
# (passed as ``--rcfile=...``) and ``modules_or_packages`` (what to check, like ``params``).
_PYLINT_SCHEMA: dict[str, Any] = {
    **_LINT_SCHEMA,
    "properties": {
        **_LINT_SCHEMA["properties"],
        "pylint_exe": {"type": "string", "minLength": 1},
        "rcfile": {"type": "string", "minLength": 1},
        "modules_or_packages": {"type": "string", "minLength": 1},
    },
    "not": {"anyOf": [{"required": ["exe", "pylint_exe"]}, {"required": ["params", "modules_or_packages"]}]},
    "x-not-hint": "give 'exe' or the original's 'pylint_exe', and 'params' or 'modules_or_packages', not both",
}


@register
class PylintTool(Tool):
    name = "pylint"
    description = "Run pylint and collect its findings as issues."
    fields_schema = _PYLINT_SCHEMA

    async def run(self, ctx: ToolContext, fields: dict[str, Any]) -> StepOutcome:
        exe = _words(fields.get("exe") or fields.get("pylint_exe")) or ["pylint"]
        rcfile = [f"--rcfile={fields['rcfile']}"] if fields.get("rcfile") else []
        targets = _words(fields.get("params") or fields.get("modules_or_packages")) or ["."]
        argv = [*exe, "--output-format=json", *rcfile, *targets]
        # pylint's exit code is a bit mask: 1 fatal, 2 error, 4 warning, 8 refactor, 16 convention, 32 usage
        return await _run_linter(ctx, fields, self.name, argv, parse_pylint, lambda code: code & 33 == 0)
