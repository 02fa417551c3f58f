"""``StageContext``: what the ``ctx`` argument of ``def stage(ctx)`` offers the code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FLOW_KINDS = ("ci", "dev")


@dataclass
class StageContext:
    args: dict[str, Any] = field(default_factory=dict)
    branch_name: str = ""
    flow_kind: str = "ci"  # "ci" | "dev"
    project_name: str = ""
    flow_id: int | None = None
    flow_seq: int | None = None
    run_id: int | None = None
    stage_name: str = ""
    trigger: dict[str, Any] = field(default_factory=dict)  # commits / pull request data

    def __post_init__(self) -> None:
        if self.flow_kind not in FLOW_KINDS:
            raise ValueError(f"flow_kind must be one of {FLOW_KINDS}, not {self.flow_kind!r}")

    @property
    def is_ci(self) -> bool:
        return self.flow_kind == "ci"

    @property
    def is_dev(self) -> bool:
        return self.flow_kind == "dev"

    def to_fields(self) -> dict[str, Any]:
        """The attributes of ``ctx`` as seen by the stage code (plain JSON data)."""
        return {
            "args": dict(self.args),
            "branch_name": self.branch_name,
            "flow_kind": self.flow_kind,
            "is_ci": self.is_ci,
            "is_dev": self.is_dev,
            "project_name": self.project_name,
            "flow_id": self.flow_id,
            "flow_seq": self.flow_seq,
            "run_id": self.run_id,
            "stage_name": self.stage_name,
            "trigger": dict(self.trigger),
        }
