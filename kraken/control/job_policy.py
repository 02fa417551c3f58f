"""Security policies that refuse a job before it runs (called from ``orchestration``).

``Branch.dev_flows_in_containers``: a dev flow runs code from a pull request, which the
direct executor would run on the agent's host with the agent's rights; with the setting on,
such a job ends with ``error`` and this reason instead (docs/security.md).
"""

from __future__ import annotations

from kraken.models import Branch, Flow, Job
from kraken.models.enums import FlowKind

CONTAINER_EXECUTORS = frozenset({"docker", "lxd"})


def refusal(branch: Branch, flow: Flow, job: Job) -> str | None:
    """Why ``job`` may not run, or None."""
    if branch.dev_flows_in_containers and flow.kind == FlowKind.DEV and job.executor not in CONTAINER_EXECUTORS:
        return (
            f"branch '{branch.name}' runs dev flows in containers only (dev_flows_in_containers): "
            f"the job asks for the '{job.executor}' executor; use 'docker' or 'lxd'"
        )
    return None
