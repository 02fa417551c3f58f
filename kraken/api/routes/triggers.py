"""The planner's view of a stage's timed triggers: when each fires next, when it last fired."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel
from sqlmodel import col, select

from kraken.api.authz import viewer
from kraken.api.deps import SessionDep, UserDep
from kraken.models import Stage
from kraken.models.triggers import TriggerState
from kraken.schemas.ints import Id

router = APIRouter(tags=["triggers"])


class TriggerStateOut(BaseModel):
    kind: str
    spec: str
    next_at: datetime | None
    last_fired: datetime | None
    fired: int
    data: dict[str, Any]


@router.get("/stages/{stage_id}/triggers", response_model=list[TriggerStateOut], dependencies=[viewer("stage_id")])
async def stage_triggers(stage_id: Id, session: SessionDep, _: UserDep) -> list[TriggerState]:
    if await session.get(Stage, stage_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"stage {stage_id} not found")
    rows = await session.execute(
        select(TriggerState).where(TriggerState.stage_id == stage_id).order_by(col(TriggerState.kind))
    )
    return list(rows.scalars())
