"""Bounded integer types for request input. Ids are 32-bit integers in PostgreSQL (only test
results and issues have 64-bit ids, and those are reached through cursors), and SQLite stores
64 bits: a bigger number is refused with a 422 that names the parameter, instead of overflowing
in the database driver (a 500)."""

from __future__ import annotations

from typing import Annotated

from annotated_types import Interval

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

Id = Annotated[int, Interval(ge=1, le=INT32_MAX)]
"""A database id (path, query or body)."""

Int32 = Annotated[int, Interval(ge=INT32_MIN, le=INT32_MAX)]
"""Any other integer compared with a 32-bit column (log line numbers, ...)."""

Count = Annotated[int, Interval(ge=0, le=INT32_MAX)]
"""A non-negative count (offsets)."""
