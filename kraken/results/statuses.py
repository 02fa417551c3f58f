"""Names and compact codes of test statuses, changes and flaky rules (shared by agent and server)."""

from __future__ import annotations

# Test status: what the tool reported.  Stored as a small integer.
PASSED = 0
FAILED = 1
ERROR = 2
SKIPPED = 3
DISABLED = 4
NOT_RUN = 5

STATUS_NAMES: tuple[str, ...] = ("passed", "failed", "error", "skipped", "disabled", "not-run")
STATUS_CODES: dict[str, int] = {name: code for code, name in enumerate(STATUS_NAMES)}
EXECUTED = (PASSED, FAILED, ERROR)  # statuses that say something about the code under test
NOT_PASSED = (FAILED, ERROR)

# Change against history.
CHANGE_NONE = 0
CHANGE_NEW = 1
CHANGE_FIX = 2
CHANGE_REGRESSION = 3
CHANGE_NAMES: tuple[str, ...] = ("none", "new", "fix", "regression")
CHANGE_CODES: dict[str, int] = {name: code for code, name in enumerate(CHANGE_NAMES)}

# Flaky rules (a bit mask: several may fire).
FLAKY_SAME_COMMIT = 1  # passed and failed on the same commit (retries, reruns, several jobs of a flow)
FLAKY_FLIP_RATE = 2  # too many pass/fail flips in the window
FLAKY_RULE_NAMES: dict[int, str] = {FLAKY_SAME_COMMIT: "same_commit", FLAKY_FLIP_RATE: "flip_rate"}

# Performance change.
PERF_NONE = 0
PERF_REGRESSION = 1
PERF_IMPROVEMENT = 2
PERF_NAMES: tuple[str, ...] = ("none", "regression", "improvement")

# Flow kinds as stored in result rows.
KIND_CI = 0
KIND_DEV = 1

ISSUE_TYPES: tuple[str, ...] = ("error", "warning", "convention", "refactor", "info")


def flaky_rules(mask: int | None) -> list[str]:
    if not mask:
        return []
    return [name for bit, name in FLAKY_RULE_NAMES.items() if mask & bit]
