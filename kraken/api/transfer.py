"""HTTP helpers for bulk transfers: job transfer tokens, range requests, streamed responses."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials

from kraken.api.deps import bearer, get_state
from kraken.artifacts import tokens
from kraken.artifacts.store import BlobMissing, BlobStore
from kraken.artifacts.tokens import JobTransfer
from kraken.schemas.ints import Id

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def agent_auth(
    request: Request, job_id: Id, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> JobTransfer:
    """Bulk transfers of a job carry the transfer token issued with its assignment (no other
    credential is accepted); the routes also check that the job still runs on that agent."""
    claims = tokens.read(creds.credentials, get_state(request).secret_key) if creds else None
    if claims is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing, invalid or expired job transfer token")
    if claims.job_id != job_id:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"the transfer token is for job {claims.job_id}, not job {job_id}"
        )
    return claims


AgentDep = Annotated[JobTransfer, Depends(agent_auth)]


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a single ``bytes=`` range; None for the whole; 416 when unsatisfiable."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None  # several ranges or another unit: answer with the whole (allowed by RFC 9110)
    if m.group(1):
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else size - 1
    else:
        start, end = max(0, size - int(m.group(2))), size - 1
    end = min(end, size - 1)
    if start > end or start >= size:
        raise HTTPException(
            status.HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE,
            f"range {header!r} is outside the {size} bytes",
            {"Content-Range": f"bytes */{size}"},
        )
    return start, end


async def _guarded(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        yield chunk


def blob_response(
    store: BlobStore,
    sha256: str,
    size: int,
    filename: str,
    range_header: str | None,
    media_type: str = "application/octet-stream",
) -> StreamingResponse:
    rng = parse_range(range_header, size)
    quoted = urllib.parse.quote(filename)
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": f'"{sha256}"',
        "Content-Disposition": f"attachment; filename*=UTF-8''{quoted}",
        "X-Checksum-Sha256": sha256,
    }
    if rng is None:
        headers["Content-Length"] = str(size)
        return StreamingResponse(_guarded(store.get(sha256)), media_type=media_type, headers=headers)
    start, end = rng
    headers["Content-Length"] = str(end - start + 1)
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return StreamingResponse(
        _guarded(store.get(sha256, start, end)),
        status_code=status.HTTP_206_PARTIAL_CONTENT,
        media_type=media_type,
        headers=headers,
    )


__all__ = ["AgentDep", "BlobMissing", "JobTransfer", "agent_auth", "blob_response", "parse_range"]
