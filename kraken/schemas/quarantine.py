"""API shapes of quarantined tests and a branch's quarantine settings."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from kraken.schemas.ints import Id


class QuarantineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    test_case_id: Id
    reason: str = Field(min_length=1, max_length=1000, description="why the test is quarantined")


class QuarantineOut(BaseModel):
    branch_id: int
    test_case_id: int
    test_name: str
    reason: str
    created_by: str = Field(description='who quarantined it: a user, or "kraken" (a flaky test, automatically)')
    created: datetime
    passes: int = Field(description="consecutive passing CI jobs since it was quarantined")


class QuarantineReleaseOut(BaseModel):
    branch_id: int
    test_case_id: int
    released: bool = Field(description="false: the test was not quarantined on the branch")


class QuarantineSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    quarantine_flaky: bool = Field(description="quarantine the tests a CI flow finds flaky")
    release_after: int | None = Field(
        default=None, ge=1, le=1000, description="release a quarantined test after this many passing CI jobs in a row"
    )


class QuarantineSettingsOut(QuarantineSettings):
    branch_id: int
