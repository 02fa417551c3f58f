"""Tables of test results, linter issues and their analysis state.

Sizes drive the design: a job may bring a million results, so ``test_result`` rows are
written once, already analysed (results wait in a per-job staging table until the job's
analysis runs), carry small integer codes (see ``kraken.results.statuses``) and have no
foreign keys (checking one per row would double the insert time) and few indexes (each
costs about a microsecond per inserted row; the one by change is partial); ``results_job`` (one row per job, with a
cascading foreign key) says which rows exist and is how orphans are cleaned up
(``kraken.results.ingest.purge_orphans``).  Queries by job go through the run index:
always give ``run_id`` with ``job_id``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from kraken.models.base import json_field

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # INTEGER PRIMARY KEY is SQLite's rowid
# Test names compare byte-wise on PostgreSQL (collation "C", as SQLite's BINARY): sorting and indexing
# a million new names needs no locale rules (see kraken.results.ingest.create_stage).
NameText = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


class TestEnv(SQLModel, table=True):
    """A job's environment as results are compared by: system, agents group and config."""

    __tablename__ = "test_env"
    __table_args__ = (sa.UniqueConstraint("system", "agents_group", "config", name="uq_test_env"),)
    id: int | None = Field(default=None, primary_key=True)
    system: str = Field(max_length=200)
    agents_group: str = Field(max_length=200)
    config: str = Field(default="", max_length=200)


class TestCase(SQLModel, table=True):
    """A test, unique per project by name."""

    __tablename__ = "test_case"
    __table_args__ = (sa.UniqueConstraint("project_id", "name", name="uq_test_case_project_name"),)
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(index=False)  # no foreign key: checking one per new test doubles the insert time
    name: str = Field(sa_column=sa.Column(NameText, nullable=False))


class TestResult(SQLModel, table=True):
    """One result of one test in one job, with its analysis against the test's history."""

    __tablename__ = "test_result"
    __table_args__ = (
        # history of a test on a branch and environment, in CI flow order (analysis, history API)
        sa.Index("ix_test_result_history", "test_case_id", "branch_id", "env_id", "flow_kind", "flow_seq"),
        # a run's results, most relevant first, keyset-paginated on (relevancy, id)
        sa.Index("ix_test_result_run_rel", "run_id", "relevancy", "id"),
        # the changed ones (new, fix, regression): after a project's first flow about 1 % of the rows
        sa.Index(
            "ix_test_result_run_change",
            "run_id",
            "change",
            "relevancy",
            "id",
            postgresql_where=sa.text("change <> 0"),
            sqlite_where=sa.text("change <> 0"),
        ),
        # failures by cause: a run's groups, and the same cause in the branch's earlier flows (failures only)
        sa.Index(
            "ix_test_result_run_failure",
            "run_id",
            "failure_key",
            "id",
            postgresql_where=sa.text("failure_key IS NOT NULL"),
            sqlite_where=sa.text("failure_key IS NOT NULL"),
        ),
        sa.Index(
            "ix_test_result_branch_failure",
            "branch_id",
            "failure_key",
            "flow_id",
            postgresql_where=sa.text("failure_key IS NOT NULL"),
            sqlite_where=sa.text("failure_key IS NOT NULL"),
        ),
    )
    id: int | None = Field(default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True))
    job_id: int
    run_id: int
    flow_id: int
    branch_id: int
    test_case_id: int
    env_id: int
    flow_kind: int = Field(sa_column=sa.Column(sa.SmallInteger, nullable=False))  # 0 ci, 1 dev
    flow_seq: int
    step_index: int | None = Field(default=None, sa_column=sa.Column(sa.SmallInteger))
    ord: int  # position in the job's report order
    status: int = Field(sa_column=sa.Column(sa.SmallInteger, nullable=False))
    duration: float | None = None
    message: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    values_json: dict[str, float] | None = json_field(None)
    # analysis
    prev_id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))  # previous CI result compared with
    change: int = Field(sa_column=sa.Column(sa.SmallInteger, nullable=False))
    age: int = 0
    last_exec: int | None = Field(default=None, sa_column=sa.Column(sa.SmallInteger))  # 0 passed, 1 not, None
    flips: int = Field(default=0, sa_column=sa.Column(sa.SmallInteger, nullable=False))  # bit mask, 9 transitions
    instability: int = Field(default=0, sa_column=sa.Column(sa.SmallInteger, nullable=False))
    flaky: bool = False
    flaky_rule: int = Field(default=0, sa_column=sa.Column(sa.SmallInteger, nullable=False))  # bit mask
    relevancy: int = Field(default=0, sa_column=sa.Column(sa.SmallInteger, nullable=False))
    perf_change: int | None = Field(default=None, sa_column=sa.Column(sa.SmallInteger))
    perf: dict[str, Any] | None = json_field(None)
    # failed and error results: the hash of their normalised signature (kraken.results.signatures)
    failure_key: str | None = Field(default=None, sa_column=sa.Column(sa.String(16)))


class ResultsJob(SQLModel, table=True):
    """Per job: where its results stand (staged, analysed) and its summary."""

    __tablename__ = "results_job"
    __table_args__ = (
        sa.Index("ix_results_job_history", "branch_id", "env_id", "flow_kind", "flow_seq"),
        sa.Index("ix_results_job_run", "run_id"),
        sa.Index("ix_results_job_flow", "flow_id"),
    )
    job_id: int = Field(primary_key=True, foreign_key="job.id", ondelete="CASCADE")
    run_id: int
    flow_id: int
    branch_id: int
    project_id: int
    env_id: int
    flow_kind: int = Field(sa_column=sa.Column(sa.SmallInteger, nullable=False))
    flow_seq: int
    job_key: str = Field(max_length=420)  # stage/job name: whose issues compare with whose
    next_ord: int = 0
    staged: int = 0  # results received and not analysed yet
    received: int = 0
    received_failed: int = 0
    perf_candidates: int = 0
    analysed: int = 0  # results analysed (rows in test_result)
    dup_count: int = 0  # results of a test already seen in this job (reruns, duplicate names)
    issues_reported: bool = False
    issues_pending: int = 0
    issues_total: int = 0
    analysed_at: datetime | None = None
    analysis_seconds: float | None = None
    summary: dict[str, Any] = json_field(dict)


class ResultsHist(SQLModel, table=True):
    """Per job: how many of its analysed results have each (status, change, flaky, instability,
    age). The results page counts its triage filters (age, instability, agents group) from these
    few rows instead of the run's million results; written with the job's summary
    (``kraken.results.analysis.job_summary``), by the same pass over its results."""

    __tablename__ = "results_hist"
    __table_args__ = (sa.Index("ix_results_hist_run", "run_id", "job_id"),)
    id: int | None = Field(default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True))
    job_id: int = Field(foreign_key="job.id", index=True, ondelete="CASCADE")
    run_id: int
    status: int = Field(sa_column=sa.Column(sa.SmallInteger, nullable=False))
    change: int = Field(sa_column=sa.Column(sa.SmallInteger, nullable=False))
    flaky: bool
    instability: int = Field(sa_column=sa.Column(sa.SmallInteger, nullable=False))
    age: int
    n: int


class ResultsReanalysis(SQLModel, table=True):
    """Per run: its latest forced re-analysis (``POST /runs/{id}/reanalyze``), a background task
    (``kraken.results.reanalysis``). ``generation`` counts the requests that started one, ``version``
    the re-analyses that completed; ``touched`` is the task's last sign of life."""

    __tablename__ = "results_reanalysis"
    run_id: int = Field(primary_key=True, foreign_key="run.id", ondelete="CASCADE")
    state: str = Field(max_length=16)  # queued | running | done | failed
    generation: int = 0
    version: int = 0
    requested: datetime
    touched: datetime
    started: datetime | None = None
    finished: datetime | None = None
    jobs: list[int] = json_field(list)  # the jobs the last completed re-analysis analysed again
    error: str | None = Field(default=None, sa_column=sa.Column(sa.Text))


class ResultsBranch(SQLModel, table=True):
    """CI flows of the branch up to ``sealed_seq`` are complete and analysed: the history
    later flows are compared with."""

    __tablename__ = "results_branch"
    branch_id: int = Field(primary_key=True, foreign_key="branch.id", ondelete="CASCADE")
    sealed_seq: int = 0
    sealed_flow_id: int | None = None


class Issue(SQLModel, table=True):
    """A linter finding."""

    __tablename__ = "issue"
    __table_args__ = (
        sa.Index("ix_issue_history", "branch_id", "job_key", "flow_kind", "flow_seq", "path", "symbol"),
        sa.Index("ix_issue_run", "run_id", "id"),
    )
    id: int | None = Field(default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True))
    job_id: int = Field(foreign_key="job.id", ondelete="CASCADE", index=True)
    run_id: int
    flow_id: int
    branch_id: int
    flow_kind: int = Field(sa_column=sa.Column(sa.SmallInteger, nullable=False))
    flow_seq: int
    job_key: str = Field(max_length=420)
    step_index: int | None = None
    tool: str = Field(max_length=50)
    path: str = Field(max_length=1000)
    line: int
    col: int
    symbol: str = Field(max_length=200)
    message: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    issue_type: str = Field(max_length=20)
    prev_id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    is_new: bool | None = None
    age: int | None = None


RESULT_TABLES = [TestEnv, TestCase, TestResult, ResultsJob, ResultsBranch, Issue]
