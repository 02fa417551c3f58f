"""Reruns of failed tests inside one step (``"rerun_failed": N``), shared by the result tools.

After the tests ran once, the ones that failed (or errored) run again, up to N more times, while
some still fail. Every run of a test is sent as its own result, tagged with its attempt
(``TestResults.attempt``), so the server records each one: a test that failed and then passed on
the same commit is flaky (analysis rule ``same_commit``) and, unless the step says
``"flaky_fails_run": true``, its failure no longer counts against the run
(``kraken.results.ingest``). A test that fails on every attempt stays a failure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from kraken.agent.tools.base import StepOutcome, ToolContext
from kraken.protocol import MAX_RERUNS
from kraken.results.collect import ResultSender

RERUN_FIELDS: dict[str, Any] = {
    "rerun_failed": {
        "type": "integer",
        "minimum": 0,
        "maximum": MAX_RERUNS,
        "description": "run the failed tests again, up to this many times, while some still fail",
    },
    "flaky_fails_run": {
        "type": "boolean",
        "description": "a test that failed and then passed on a rerun still counts as failed (default: false)",
    },
}

# Runs the given failed tests once more, sending their results through the sender; its outcome is
# "passed" when the tests could run (whatever they gave).
RunAgain = Callable[[list[str]], Awaitable[StepOutcome]]


def prepare(sender: ResultSender, fields: dict[str, Any]) -> int:
    """Set the sender up for the step's reruns; returns how many reruns the step allows."""
    times = int(fields.get("rerun_failed") or 0)
    sender.keep_failed = times > 0
    sender.rerun_clears = not bool(fields.get("flaky_fails_run", False))
    return times


async def rerun_failed(ctx: ToolContext, sender: ResultSender, times: int, run_again: RunAgain) -> StepOutcome | None:
    """Rerun the failed tests while some fail, at most ``times`` times.

    Returns the outcome of a rerun that could not run (its error ends the step), else None."""
    for n in range(1, times + 1):
        failed = list(dict.fromkeys(sender.failed_names))
        if not failed:
            return None
        await sender.next_attempt()
        await ctx.log(f"rerun {n} of {times}: {len(failed)} failed test(s)")
        outcome = await run_again(failed)
        await sender.flush()
        if outcome.result != "passed":
            return outcome
    left = len(set(sender.failed_names))
    if times and left:
        await ctx.log(f"{left} test(s) still failed after {times} rerun(s)")
    return None
