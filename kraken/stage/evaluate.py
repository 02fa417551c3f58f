"""Evaluate a stage's code in the sandbox and return its normalized, validated schema."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from kraken.stage.context import StageContext
from kraken.stage.errors import StageSchemaError
from kraken.stage.normalize import normalize_schema
from kraken.stage.pycompat import Converted, convert
from kraken.stage.sandbox import SandboxCrash, get_pool
from kraken.stage.starlark_errors import from_reply, sandbox_failure

MAX_CODE_SIZE = 1024 * 1024


async def run_stage_code(code: str, ctx: StageContext) -> dict[str, Any]:
    """What ``stage(ctx)`` returns, as plain data (not yet validated)."""
    if len(code) > MAX_CODE_SIZE:
        raise StageSchemaError(f"the stage code is too long ({len(code)} characters, limit {MAX_CODE_SIZE})")
    # the original's Python-isms (tabs, ``is``, ``while``, ``**``, ...), lines mapped back; in a
    # thread: it takes some 20-80 ms per 1000 lines, which the event loop should not wait for
    converted = await asyncio.to_thread(convert, code)
    pool = get_pool()
    limits = pool.limits
    try:
        reply = await pool.run(converted.code, ctx.to_fields())
    except SandboxCrash as crash:
        raise sandbox_failure(crash.reason, crash.detail, limits.timeout, limits.memory_mb) from None
    if reply.get("ok") is not True:
        raise _at_original_line(from_reply(reply, converted.code, limits.timeout, limits.memory_mb), converted)
    value: dict[str, Any] = reply["value"]
    return value


def _at_original_line(error: StageSchemaError, converted: Converted) -> StageSchemaError:
    """The error at the author's line (a conversion may have added lines), with the notes on it."""
    if error.line is None:
        return error
    line = converted.original_line(error.line)
    message = error.message
    for note in converted.notes:
        if note.first <= line <= note.last:
            message += f" ({note.text})"
            break
    column = error.column if line == error.line else None
    return StageSchemaError(message, line=line, column=column, path=error.path)


async def evaluate_stage(code: str, ctx: StageContext) -> dict[str, Any]:
    """Run ``stage(ctx)`` in the sandbox; return the normalized schema or raise ``StageSchemaError``."""
    return normalize_schema(await run_stage_code(code, ctx))


async def check_stage_code(code: str, ctx: StageContext | None = None) -> dict[str, Any]:
    """Check code on stage create/update: evaluate with ``ctx.args`` = the parameters' defaults.

    The first pass (``args={}``) reads the declared parameters; if any has a default, a second
    pass evaluates with those defaults, as a run without explicit arguments would.
    """
    base = ctx or StageContext()
    schema = await evaluate_stage(code, dataclasses.replace(base, args={}))
    defaults = {p["name"]: p["default"] for p in schema["parameters"] if "default" in p}
    if not defaults:
        return schema
    return await evaluate_stage(code, dataclasses.replace(base, args=defaults))
