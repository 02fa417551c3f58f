"""Tool ``cloc`` (from the original Kraken): count lines of code with the ``cloc`` program and report
one test per language (and ``SUM``) with the values ``code``, ``comment``, ``blank``, ``total``
and ``files``, so that their history shows how the code base grows.

Fields: ``cwd``, ``not-match-f`` (a regular expression of file names to leave out),
``exclude-dir`` (comma-separated directory names).  ``cloc`` must be installed in the job's
environment (Debian: ``apt-get install cloc``).
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from kraken.agent.tools.base import StepOutcome, Tool, ToolContext
from kraken.agent.tools.registry import register
from kraken.results.collect import ResultSender, read_all
from kraken.results.parsers.base import ParsedResult, bound_name


def cloc_results(report: bytes) -> list[ParsedResult]:
    """One passed result with values per language of a ``cloc --json`` report."""
    doc = orjson.loads(report)
    if not isinstance(doc, dict):
        raise ValueError("the report is not a JSON object")
    out = []
    for language, counts in doc.items():
        if language == "header" or not isinstance(counts, dict):
            continue
        values = {key: float(counts.get(key, 0)) for key in ("code", "comment", "blank")}
        values["total"] = values["code"] + values["comment"] + values["blank"]
        values["files"] = float(counts.get("nFiles", 0))
        out.append(ParsedResult(bound_name(str(language)), "passed", None, None, values))
    return out


@register
class ClocTool(Tool):
    name = "cloc"
    description = "Count lines of code per language (cloc) and report them as values."
    fields_schema = {
        "type": "object",
        "properties": {
            "cwd": {"type": "string"},
            "not-match-f": {"type": "string", "minLength": 1},
            "exclude-dir": {"type": "string", "minLength": 1},
        },
        "additionalProperties": False,
    }

    async def run(self, ctx: ToolContext, fields: dict[str, Any]) -> StepOutcome:
        report = f".kraken/cloc-{ctx.step_index}-{uuid.uuid4().hex[:8]}.json"
        await ctx.executor.write_file(report, b"")  # makes .kraken/
        argv = ["cloc", ".", "--json", "--quiet", f"--report-file={ctx.executor.workdir}/{report}"]
        if fields.get("not-match-f"):
            argv.append(f"--not-match-f={fields['not-match-f']}")
        if fields.get("exclude-dir"):
            argv.append(f"--exclude-dir={fields['exclude-dir']}")
        await ctx.log("$ " + " ".join(argv))
        res = await ctx.executor.exec(argv, cwd=fields.get("cwd"), timeout=ctx.timeout, on_line=ctx.log)
        if res.cancelled:
            return StepOutcome("cancelled", "cancelled", res.exit_code)
        if res.timed_out:
            return StepOutcome("timeout", f"cloc timed out after {ctx.timeout:g}s", res.exit_code)
        if res.exit_code in (126, 127):
            return StepOutcome("error", "cloc is not installed in this environment", res.exit_code)
        if res.exit_code != 0:
            return StepOutcome("error", f"cloc failed (exit code {res.exit_code}): see the step log", res.exit_code)
        try:
            results = cloc_results(await read_all(ctx, report))
        except (OSError, ValueError) as exc:
            return StepOutcome("error", f"cannot read the cloc report: {exc}")
        sender = ResultSender(ctx, self.name)
        await sender.add_all(results)
        await sender.flush()
        await ctx.log(f"{len(results)} languages (with SUM)")
        return StepOutcome("passed", None, 0)
