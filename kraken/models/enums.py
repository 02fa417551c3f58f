"""State and result names of flows, runs, jobs and steps (defined in ``kraken.protocol``, shared with the agent)
and the order of results."""

from __future__ import annotations

from kraken.protocol import FlowKind, Result, State, StepResult, StepState

__all__ = ["RESULT_RANK", "FlowKind", "Result", "State", "StepResult", "StepState", "worst"]


# For "the worst of its runs": a higher rank wins.
RESULT_RANK = {
    Result.PASSED: 0,
    Result.FAILED: 1,
    Result.TIMEOUT: 2,
    Result.ERROR: 3,
    Result.CANCELLED: 4,
}


def worst(results: list[Result]) -> Result:
    return max(results, key=lambda r: RESULT_RANK[r]) if results else Result.PASSED
