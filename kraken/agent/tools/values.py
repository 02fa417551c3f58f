"""Tool ``values_collect``: send named numeric values per test (benchmark timings, sizes...) read
from JSON files; the server compares each value with its history (performance changes).

Two forms:
- ``file_glob`` (and ``cwd``): files of ``{"test": {"name": number}}`` or a list of items;
- the original Kraken's ``files: [{"name": path, "namespace": test}]``: each file is one flat
  ``{"name": number}`` object, reported as the values of one test named ``namespace`` (default:
  the file's path).  A missing or unreadable file makes that test an ``error``.
"""

from __future__ import annotations

from typing import Any

import orjson

from kraken.agent.tools.base import StepOutcome, Tool, ToolContext
from kraken.agent.tools.registry import register
from kraken.results.collect import FILE_GLOB_FIELDS, ResultSender, first_error, join_path, matching_files, read_all
from kraken.results.parsers.base import ParsedResult, bound_name
from kraken.results.parsers.values import parse_values, plain_values

_FILES_FIELDS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "files": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string", "minLength": 1}, "namespace": {"type": "string"}},
                "required": ["name"],
                "additionalProperties": False,
            },
        },
        "cwd": {"type": "string"},
    },
    "required": ["files"],
    "additionalProperties": False,
}


@register
class ValuesCollectTool(Tool):
    name = "values_collect"
    description = 'Collect values per test from JSON files: {"test": {"name": number}} or a list of items.'
    fields_schema = {"if": {"required": ["files"]}, "then": _FILES_FIELDS, "else": FILE_GLOB_FIELDS}

    async def run(self, ctx: ToolContext, fields: dict[str, Any]) -> StepOutcome:
        if "files" in fields:
            return await self._named_files(ctx, fields)
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

    async def _named_files(self, ctx: ToolContext, fields: dict[str, Any]) -> StepOutcome:
        cwd: str | None = fields.get("cwd")
        sender = ResultSender(ctx, self.name)
        for item in fields["files"]:
            path = item["name"]
            test = bound_name(item.get("namespace") or path)
            try:
                doc = orjson.loads(await read_all(ctx, join_path(cwd, path)))
            except Exception as exc:
                message = f"cannot read {path}: {exc}"
                await ctx.log(f"error: {message}")
                await sender.add(ParsedResult(test, "error", None, message, None))
                continue
            values = plain_values(doc)
            await ctx.log(f"{path}: {len(values or {})} values for {test}")
            await sender.add(ParsedResult(test, "passed", None, None, values))
        await sender.flush()
        return StepOutcome("passed")
