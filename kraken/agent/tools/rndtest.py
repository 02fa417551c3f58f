"""Tool ``rndtest`` (from the original Kraken): report ``count`` made-up test results.

For trying Kraken out: test names are stable for a given count (seeded), results are random
(passed, failed, error, skipped, disabled, not-run), and some tests carry random values.
``override_result`` forces every result (a status name, or the original's status number 0-5).
The step itself passes.
"""

from __future__ import annotations

import random
from typing import Any

from kraken.agent.tools.base import StepOutcome, Tool, ToolContext, ToolError
from kraken.agent.tools.registry import register
from kraken.results.collect import ResultSender
from kraken.results.parsers.base import ParsedResult
from kraken.results.statuses import STATUS_NAMES

_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet")
_VALUE_NAMES = ("FPS", "pressure", "speed", "duration", "temperature")
MAX_COUNT = 100_000

_COUNT = {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "minLength": 1}]}  # "#{COUNT}" too


def _count(value: Any) -> int:
    try:
        count = int(value)
    except ValueError:
        raise ToolError(f"count must be a number, got {value!r}") from None
    if not 1 <= count <= MAX_COUNT:
        raise ToolError(f"count must be between 1 and {MAX_COUNT}, got {count}")
    return count


def _override(value: Any) -> str | None:
    if value is None or value == "":
        return None
    text = str(value).strip()
    if text.isdigit() and int(text) < len(STATUS_NAMES):
        return STATUS_NAMES[int(text)]
    if text in STATUS_NAMES:
        return text
    raise ToolError(f"override_result must be one of {', '.join(STATUS_NAMES)} (or 0-5), got {value!r}")


def test_names(count: int) -> list[str]:
    rnd = random.Random(count)
    return [f"test_{rnd.choice(_WORDS)}_{i}_{rnd.randint(0, 100000)}" for i in range(count)]


@register
class RndTestTool(Tool):
    name = "rndtest"
    description = "Report random test results (for trying Kraken out)."
    fields_schema = {
        "type": "object",
        "properties": {
            "count": _COUNT,
            "override_result": {"oneOf": [{"type": "integer", "minimum": 0}, {"type": "string"}]},
        },
        "additionalProperties": False,
    }

    async def run(self, ctx: ToolContext, fields: dict[str, Any]) -> StepOutcome:
        count = _count(fields.get("count", 10))
        override = _override(fields.get("override_result"))
        rnd = random.Random()
        sender = ResultSender(ctx, self.name)
        for name in test_names(count):
            status = override or rnd.choice(STATUS_NAMES)
            values = None
            if rnd.random() < 0.3:
                values = {key: round(rnd.uniform(0, 1000), 3) for key in rnd.sample(_VALUE_NAMES, rnd.randint(1, 3))}
            await sender.add(ParsedResult(name, status, round(rnd.uniform(0, 2), 3), None, values))
        await sender.flush()
        await ctx.log(f"reported {count} random test results")
        return StepOutcome("passed")
