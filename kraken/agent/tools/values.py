"""Tool ``values_collect``: send named numeric values per test (benchmark timings, sizes...) read
from JSON files; the server compares each value with its history (performance changes)."""

from __future__ import annotations

from typing import Any

from kraken.agent.tools.base import StepOutcome, Tool, ToolContext
from kraken.agent.tools.registry import register
from kraken.results.collect import FILE_GLOB_FIELDS, ResultSender, first_error, join_path, matching_files, read_all
from kraken.results.parsers.values import parse_values


@register
class ValuesCollectTool(Tool):
    name = "values_collect"
    description = 'Collect values per test from JSON files: {"test": {"name": number}} or a list of items.'
    fields_schema = FILE_GLOB_FIELDS

    async def run(self, ctx: ToolContext, fields: dict[str, Any]) -> StepOutcome:
        files, problem = await matching_files(ctx, fields)
        if problem:
            return StepOutcome("error", problem)
        cwd: str | None = fields.get("cwd")
        sender = ResultSender(ctx, self.name)
        errors: list[str] = []
        for f in files:
            try:
                data = await read_all(ctx, join_path(cwd, f))
            except Exception as exc:
                errors.append(f"{f}: cannot read: {exc}")
                continue
            results, err = parse_values(data, f)
            await sender.add_all(results)
            await ctx.log(f"{f}: {len(results)} results with values")
            if err is not None:
                errors.append(str(err))
        await sender.flush()
        for e in errors:
            await ctx.log(f"error: {e}")
        if errors:
            return StepOutcome("error", first_error(errors))
        return StepOutcome("passed")
