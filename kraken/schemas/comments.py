"""Request/response models of test case comments."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kraken.schemas.ints import Id

CommentState = Literal["new", "investigating", "bug-in-product", "bug-in-test"]
MAX_TEXT = 65_536


class CommentIn(BaseModel):
    branch_id: Id
    text: str = Field(default="", max_length=MAX_TEXT, description="Markdown")
    state: CommentState | None = Field(default=None, description="the comment's new state; unchanged when absent")


class CommentEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    author: str
    text: str
    state: CommentState
    created: datetime


class CommentOut(BaseModel):
    test_case_id: int
    branch_id: int
    state: CommentState | None = Field(description="null while the test has no comment on the branch")
    entries: list[CommentEntryOut] = []
