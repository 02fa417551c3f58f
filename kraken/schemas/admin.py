"""Request shapes of project and branch management (edit, sequence counters)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

SEQUENCES = ("ci_flow_seq", "dev_flow_seq", "run_seq")


class Strict(BaseModel):
    """Unknown keys are refused (422 naming them), never ignored."""

    model_config = ConfigDict(extra="forbid")


class ProjectPatch(Strict):
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = None
    public: bool | None = None  # every logged-in user is a viewer


class SequencesPatch(Strict):
    """The branch's counters: the next CI flow gets ``ci_flow_seq + 1``, and so on."""

    ci_flow_seq: int | None = Field(None, ge=0)
    dev_flow_seq: int | None = Field(None, ge=0)
    run_seq: int | None = Field(None, ge=0)
