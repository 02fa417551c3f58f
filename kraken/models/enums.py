"""State and result names of flows, runs, jobs and steps (the API's exact strings)."""

from __future__ import annotations

from enum import StrEnum


class FlowKind(StrEnum):
    CI = "ci"
    DEV = "dev"


class State(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"


class Result(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"


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


class StepState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"


class StepResult(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
