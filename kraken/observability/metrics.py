"""Kraken's Prometheus metrics, one registry per process.

Every role is one process with one event loop (``kraken serve``'s local agent is a thread of it),
so each process serves its own metrics; Prometheus scrapes every process (``docs/metrics.md``).
Events are counted where they happen (an assignment, a completed job, a task's end); what the
database already knows (jobs by state, queues, agents) is read at scrape time (``gauges.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    gc_collector,
    platform_collector,
    process_collector,
)

import kraken
from kraken.observability import journal
from kraken.observability.journal import JOURNAL

REGISTRY = CollectorRegistry(auto_describe=True)
process_collector.ProcessCollector(registry=REGISTRY)
platform_collector.PlatformCollector(registry=REGISTRY)
gc_collector.GCCollector(registry=REGISTRY)

# seconds: from a few milliseconds (an API call) to hours (a flow)
SHORT = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LONG = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0)

BUILD = Info("kraken_build", "Kraken's version and this process's role", registry=REGISTRY)

HTTP_DURATION = Histogram(
    "kraken_http_request_duration_seconds",
    "HTTP requests by route template, from the request to the end of the response",
    ["method", "route", "status"],
    buckets=SHORT,
    registry=REGISTRY,
)
JOBS_ASSIGN_WAIT = Histogram(
    "kraken_job_queued_to_assigned_seconds",
    "Time a job waited in the queue before an agent got it, by agents group",
    ["agents_group"],
    buckets=LONG,
    registry=REGISTRY,
)
JOBS_COMPLETED = Counter(
    "kraken_jobs_completed_total", "Jobs completed (by this process), by result", ["result"], registry=REGISTRY
)
FLOW_DURATION = Histogram(
    "kraken_flow_trigger_to_completed_seconds",
    "Time from a flow's creation (its trigger) to its completion, by result",
    ["result"],
    buckets=LONG,
    registry=REGISTRY,
)
LOG_LINES = Counter("kraken_log_lines_total", "Job log lines stored", registry=REGISTRY)
ANALYSIS_DURATION = Histogram(
    "kraken_results_analysis_seconds",
    "Duration of one job's test-results analysis",
    buckets=(*SHORT, 60.0, 120.0, 300.0),
    registry=REGISTRY,
)
ANALYSIS_ROWS = Counter("kraken_results_analysis_rows_total", "Test results analysed", registry=REGISTRY)
TASKS = Counter(
    "kraken_background_tasks_total",
    "Background task runs by task and outcome (ok, retried, failed)",
    ["task", "outcome"],
    registry=REGISTRY,
)
TASK_DURATION = Histogram(
    "kraken_background_task_seconds", "Duration of background task runs", ["task"], buckets=SHORT, registry=REGISTRY
)
SCHED_PASSES = Counter("kraken_scheduler_passes_total", "Scheduler passes, by outcome", ["outcome"], registry=REGISTRY)
SCHED_PASS_DURATION = Histogram(
    "kraken_scheduler_pass_seconds", "Duration of a scheduler pass", buckets=SHORT, registry=REGISTRY
)
SCHED_ASSIGNED = Counter("kraken_scheduler_assigned_total", "Jobs the scheduler assigned", registry=REGISTRY)
LOOP_LAG = Histogram(
    "kraken_event_loop_lag_seconds",
    "How late the event loop woke a timer (a busy or blocked loop)",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
LOOP_LAG_LAST = Gauge("kraken_event_loop_lag_last_seconds", "The event loop's last measured lag", registry=REGISTRY)
DATA_VOLUME_FULL = Gauge(
    "kraken_data_volume_full",
    "1 while the server's data volume has no space left (writes failed, or less than the reserve free)",
    registry=REGISTRY,
)


def set_role(role: str) -> None:
    BUILD.info({"version": kraken.__version__, "role": role})
    journal.start(role)


def _age(since: datetime | None, now: datetime) -> float | None:
    if since is None:
        return None
    if since.tzinfo is None:  # SQLite gives naive datetimes back: they are UTC
        since = since.replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return max(0.0, (now - since).total_seconds())


def job_assigned(agents_group: str, created: datetime | None, now: datetime) -> None:
    wait = _age(created, now)
    if wait is not None:
        JOBS_ASSIGN_WAIT.labels(agents_group).observe(wait)


def job_completed(result: str) -> None:
    JOBS_COMPLETED.labels(str(result)).inc()


def flow_completed(result: str, created: datetime | None, now: datetime) -> None:
    took = _age(created, now)
    if took is not None:
        FLOW_DURATION.labels(str(result)).observe(took)


def log_lines(n: int) -> None:
    LOG_LINES.inc(n)


def analysis_done(seconds: float, rows: int) -> None:
    ANALYSIS_DURATION.observe(seconds)
    ANALYSIS_ROWS.inc(rows)


def task_done(task: str, outcome: str, seconds: float, error: BaseException | None = None) -> None:
    TASKS.labels(task, outcome).inc()
    TASK_DURATION.labels(task).observe(seconds)
    JOURNAL.task_done(task, outcome, seconds, error)


def scheduler_pass(seconds: float, assigned: int, failed: bool = False) -> None:
    JOURNAL.scheduler_pass(seconds, assigned, failed)
    SCHED_PASSES.labels("failed" if failed else "ok").inc()
    SCHED_PASS_DURATION.observe(seconds)
    SCHED_ASSIGNED.inc(assigned)
