"""State and result names of flows, runs, jobs and steps, defined in ``kraken.protocol`` (shared with
the agent); which result wins is ``kraken.control.transitions``."""

from __future__ import annotations

from kraken.protocol import FlowKind, Result, State, StepResult, StepState

__all__ = ["FlowKind", "Result", "State", "StepResult", "StepState"]
