"""``StageContext``: what the ``ctx`` argument of ``def stage(ctx)`` offers the code, and the
built-in ``#{...}`` variables of the run.

``ctx`` (as in the original Kraken): ``args``, ``env`` (the branch's environment variables),
``is_ci``, ``is_dev``, ``branch_name``, ``project`` (id, name, description), ``branch`` (id,
name, branch_name), ``stage`` (id, name), ``flow`` (id, kind, label, seq.own, seq.shared, data),
``run`` (id, seq.own, seq.shared), and the flat ``flow_kind``, ``project_name``, ``flow_id``,
``flow_seq``, ``run_id``, ``stage_name``, ``trigger``.

Sequences (the original's): ``flow.seq.shared`` counts the branch's flows of both kinds,
``flow.seq.own`` those of the flow's kind; ``run.seq.shared`` counts the stage's runs in flows
of both kinds, ``run.seq.own`` in flows of the run's kind.  Their old names are
``KK_FLOW_SEQ``, ``KK_CI_DEV_FLOW_SEQ``, ``KK_RUN_SEQ`` and ``KK_CI_DEV_RUN_SEQ``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FLOW_KINDS = ("ci", "dev")
# Names of the built-in variables: no stage parameter may take them.
BUILTIN_NAMES = frozenset({"args", "env", "flow", "run", "project", "branch", "stage", "is_ci", "is_dev"})
LEGACY_PREFIX = "KK_"


@dataclass
class StageContext:
    args: dict[str, Any] = field(default_factory=dict)
    branch_name: str = ""
    flow_kind: str = "ci"  # "ci" | "dev"
    project_name: str = ""
    flow_id: int | None = None
    flow_seq: int | None = None  # own: flows of this kind
    run_id: int | None = None
    stage_name: str = ""
    trigger: dict[str, Any] = field(default_factory=dict)  # commits / pull request data
    env: dict[str, str] = field(default_factory=dict)  # the branch's environment variables
    project_id: int | None = None
    project_description: str = ""
    branch_id: int | None = None
    branch_display_name: str = ""
    stage_id: int | None = None
    flow_label: str | None = None
    flow_shared_seq: int | None = None  # flows of both kinds
    run_seq: int | None = None  # own: runs of this stage in flows of this kind
    run_shared_seq: int | None = None  # runs of this stage in flows of both kinds

    def __post_init__(self) -> None:
        if self.flow_kind not in FLOW_KINDS:
            raise ValueError(f"flow_kind must be one of {FLOW_KINDS}, not {self.flow_kind!r}")

    @property
    def is_ci(self) -> bool:
        return self.flow_kind == "ci"

    @property
    def is_dev(self) -> bool:
        return self.flow_kind == "dev"

    def _objects(self) -> dict[str, dict[str, Any]]:
        return {
            "project": {"id": self.project_id, "name": self.project_name, "description": self.project_description},
            "branch": {
                "id": self.branch_id,
                "name": self.branch_display_name or self.branch_name,
                "branch_name": self.branch_name,
            },
            "stage": {"id": self.stage_id, "name": self.stage_name},
            "flow": {
                "id": self.flow_id,
                "kind": self.flow_kind,
                "label": self.flow_label,
                "seq": {"own": self.flow_seq, "shared": self.flow_shared_seq},
                "data": {},
            },
            "run": {"id": self.run_id, "seq": {"own": self.run_seq, "shared": self.run_shared_seq}},
        }

    def to_fields(self) -> dict[str, Any]:
        """The attributes of ``ctx`` as seen by the stage code (plain JSON data)."""
        return {
            "args": dict(self.args),
            "env": dict(self.env),
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
            **self._objects(),
        }

    def variables(self) -> dict[str, Any]:
        """The built-in ``#{...}`` variables (run arguments come beside them, see ``expand_jobs``)."""
        out: dict[str, Any] = {
            **self._objects(),
            "env": dict(self.env),
            "is_ci": self.is_ci,
            "is_dev": self.is_dev,
        }
        legacy = {
            "KK_FLOW_SEQ": self.flow_shared_seq,
            "KK_CI_DEV_FLOW_SEQ": self.flow_seq,
            "KK_RUN_SEQ": self.run_shared_seq,
            "KK_CI_DEV_RUN_SEQ": self.run_seq,
        }
        out.update((name, value) for name, value in legacy.items() if value is not None)
        return out
