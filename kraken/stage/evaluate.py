"""Evaluate a stage's code in the sandbox and return its normalized, validated schema."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from kraken.stage.context import StageContext
from kraken.stage.errors import StageSchemaError
from kraken.stage.normalize import normalize_schema
from kraken.stage.pycompat import to_starlark
from kraken.stage.sandbox import SandboxCrash, get_pool
from kraken.stage.starlark_errors import from_reply, sandbox_failure

MAX_CODE_SIZE = 1024 * 1024


async def run_stage_code(code: str, ctx: StageContext) -> dict[str, Any]:
    """What ``stage(ctx)`` returns, as plain data (not yet validated)."""
    if len(code) > MAX_CODE_SIZE:
        raise StageSchemaError(f"the stage code is too long ({len(code)} characters, limit {MAX_CODE_SIZE})")
    # the original's Python-isms (tabs, ``is``, ctx.args.NAME, ...), same lines; in a thread: it
    # takes some 20-80 ms per 1000 lines, which the event loop should not wait for
    code = await asyncio.to_thread(to_starlark, code)
    pool = get_pool()
    limits = pool.limits
    try:
        reply = await pool.run(code, ctx.to_fields())
    except SandboxCrash as crash:
        raise sandbox_failure(crash.reason, crash.detail, limits.timeout, limits.memory_mb) from None
    if reply.get("ok") is not True:
        raise from_reply(reply, code, limits.timeout, limits.memory_mb)
    value: dict[str, Any] = reply["value"]
    return value


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
