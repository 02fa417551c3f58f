"""Response models of the results API (kraken/api/routes/results.py): test results, summaries,
linter issues and a test's history."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TestStatus = Literal["passed", "failed", "error", "skipped", "disabled", "not-run"]
TestChange = Literal["none", "new", "fix", "regression"]
PerfChange = Literal["regression", "improvement"]
FlakyRule = Literal["same_commit", "flip_rate"]
Analysis = Literal["pending", "done", "none"]


class TestResultOut(BaseModel):
    """One analysed result of a run."""

    __test__ = False  # not a pytest class

    id: int
    test: str = Field(description="the test's name")
    test_case_id: int
    status: TestStatus
    change: TestChange = Field(description="against the previous CI result of the test in the same environment")
    age: int = Field(description="flows since the status last changed")
    instability: int = Field(description="pass/fail flips in the recent window")
    flaky: bool
    flaky_rules: list[FlakyRule]
    relevancy: int = Field(description="how much a failure deserves a look; 0 for results that did not fail")
    duration: float | None
    job_id: int
    system: str
    agents_group: str
    config: str | None
    message: str | None
    values: dict[str, float] | None = Field(description="the numbers the test reported (performance)")
    perf_change: PerfChange | None
    quarantined: bool = Field(default=False, description="the test is quarantined on the run's branch (now)")


class ResultsPage(BaseModel):
    total: int = Field(description="results matching the filters, on every page")
    items: list[TestResultOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class JobAnalysisOut(BaseModel):
    job_id: int
    analysis: Literal["pending", "done"]
    analysis_seconds: float | None
    total: int
    failed: int = Field(description="failed and error results")
    regressions: int


class SummaryOut(BaseModel):
    """Totals per status and change of the results of a run or a flow, and its linter issues."""

    model_config = ConfigDict(populate_by_name=True)

    total: int
    passed: int
    failed: int
    error: int
    skipped: int
    disabled: int
    not_run: int = Field(alias="not-run")
    new: int
    fixes: int
    regressions: int
    no_change: int
    flaky: int
    perf_regressions: int
    perf_improvements: int
    issues: int
    new_issues: int
    analysis: Analysis = Field(description="pending while results are being analysed; none when there are none")
    pending_results: int
    received: int
    jobs: list[JobAnalysisOut]


class RunSummaryOut(SummaryOut):
    run_id: int


class FlowSummaryOut(SummaryOut):
    flow_id: int


class IssueOut(BaseModel):
    id: int
    job_id: int
    tool: str
    path: str
    line: int
    column: int
    symbol: str
    message: str
    type: str = Field(description="error, warning, convention, refactor or info")
    new: bool | None = Field(description="not seen in the previous analysed flow; null while not analysed")
    age: int | None


class IssuesPage(BaseModel):
    total: int
    items: list[IssueOut]
    next_cursor: str | None


class HistoryItemOut(BaseModel):
    id: int
    flow_id: int
    flow_kind: Literal["ci", "dev"]
    flow_seq: int
    run_id: int
    job_id: int
    branch_id: int
    status: TestStatus
    change: TestChange
    age: int
    instability: int
    flaky: bool
    flaky_rules: list[FlakyRule]
    duration: float | None
    values: dict[str, float] | None
    perf_change: PerfChange | None
    perf: dict[str, Any] | None = Field(description="the performance analysis: its window and changes")
    system: str
    agents_group: str
    config: str | None


class TestCaseBrief(BaseModel):
    __test__ = False

    id: int
    project_id: int
    name: str


class TestHistoryOut(BaseModel):
    test_case: TestCaseBrief
    items: list[HistoryItemOut]


# ------------------------------------------------------------------------------ failures grouped by cause


class FailureTestOut(BaseModel):
    """One failed (or error) result of a failure group."""

    result_id: int
    test_case_id: int
    test: str = Field(description="the test's name")
    job_id: int
    status: TestStatus
    change: TestChange
    flaky: bool


class FailureFlowOut(BaseModel):
    """An earlier CI flow of the branch where the same cause failed tests."""

    flow_id: int
    flow_seq: int
    run_id: int = Field(description="a run of that flow with failures of this cause")
    count: int = Field(description="failures of this cause in that flow")


class FailureGroupOut(BaseModel):
    """Failures of a run that share a normalised signature: one cause."""

    key: str = Field(description="16 hex digits: the hash of the signature, the same in every run")
    signature: str = Field(description="exception type | innermost frames | normalised error line")
    count: int = Field(description="failures of the run in this group")
    message: str | None = Field(description="a representative message (the group's first failure)")
    tests: list[FailureTestOut] = Field(description="the first failures, by result id; more via .../tests")
    more_tests: bool
    known: bool = Field(description="the same cause failed tests in an earlier CI flow of the branch")
    earlier_flows: int = Field(description="earlier CI flows of the branch with this cause")
    first_seen: FailureFlowOut | None = Field(description="the earliest of them")
    recent: list[FailureFlowOut] = Field(description="the latest of them (up to 10), newest first")


class FailureGroupsOut(BaseModel):
    run_id: int
    failures: int = Field(description="failed and error results of the run")
    causes: int = Field(description="distinct signatures among them")
    unkeyed: int = Field(description="failures analysed before signatures existed (in no group)")
    groups: list[FailureGroupOut] = Field(description="largest first")


class FailureTestsPage(BaseModel):
    items: list[FailureTestOut]
    next_after: int | None = Field(description="pass as ?after= for the next page; null on the last one")


class ReanalysisOut(BaseModel):
    """A run's forced re-analysis, a background task: ``queued``, ``running``, ``done`` or
    ``failed`` (``none``: never asked for). ``generation`` counts the requests that started one,
    ``version`` the re-analyses done; ``jobs``: those the last one analysed again (jobs still
    waiting for their first analysis are left to it)."""

    run_id: int
    state: Literal["none", "queued", "running", "done", "failed"]
    generation: int
    version: int
    requested: datetime | None = None
    started: datetime | None = None
    finished: datetime | None = None
    jobs: list[int] = []
    error: str | None = None


class BranchFlowStatsOut(BaseModel):
    """One CI flow's figures on the branch charts (``duration`` in seconds, None while running;
    ``pass_ratio`` None without test results)."""

    flow_id: int
    seq: int
    label: str | None
    state: str
    created: datetime
    duration: float | None
    total: int
    passed: int
    failed: int
    regressions: int
    fixes: int
    flaky: int
    pass_ratio: float | None
    analysis: Literal["pending", "done", "none"]


class BranchStatsOut(BaseModel):
    branch_id: int
    flows: list[BranchFlowStatsOut]
