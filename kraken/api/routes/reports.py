"""HTML reports: the artifacts tool's ``report_entry`` marks an uploaded page as a report's entry;
the artifacts of the same job below the entry's directory are the report's files.

``GET /api/runs/{run_id}/reports/{artifact_id}/{access_token}/{file}`` serves one of them (viewer
role on the run).  A browser opens a report in a new tab, which cannot send the Authorization
header, so the short-lived ``download`` stream token (``POST /api/auth/stream-token``) goes in
the path, where the report's relative links (its CSS, scripts, other pages) keep it; with the
header, ``access_token`` is any placeholder (``-``).

A report is code from a job, hence hostile: it is served with ``Content-Security-Policy:
sandbox`` without ``allow-same-origin``, so its scripts run in an opaque origin and can read
neither Kraken's storage (the login token) nor its cookies nor call its API as the viewer;
``default-src 'self'`` keeps it from loading or sending anything elsewhere; ``nosniff`` with the
type from the file name; paths with ``..``, absolute ones and NUL are refused (400) before any
lookup.
"""

from __future__ import annotations

import mimetypes
import posixpath

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import StreamingResponse
from sqlmodel import select

from kraken.api.authz import viewer
from kraken.api.deps import StateDep, UserDep, query_token
from kraken.api.transfer import blob_response
from kraken.artifacts.paths import UnsafePath, clean_relative
from kraken.artifacts.store import blob_store
from kraken.models.artifacts import Artifact
from kraken.schemas.ints import Id

router = APIRouter(tags=["artifacts"])

REPORT_CSP = (
    "sandbox allow-scripts allow-popups allow-downloads; default-src 'self' 'unsafe-inline' data:;"
    " form-action 'none'; base-uri 'none'"
)
"""No ``allow-same-origin``: the report's origin is opaque, apart from Kraken's."""

TEXT_TYPES = ("text/", "application/javascript", "application/json", "image/svg+xml")


def media_type(path: str) -> str:
    """The type from the file name (``nosniff`` makes the browser keep it); text gets UTF-8."""
    kind = mimetypes.guess_type(path, strict=False)[0] or "application/octet-stream"
    return f"{kind}; charset=utf-8" if kind.startswith(TEXT_TYPES) else kind


@router.get(
    "/runs/{run_id}/reports/{artifact_id}/{access_token}/{file:path}",
    dependencies=[viewer("run_id")],
    response_class=StreamingResponse,
    responses={200: {"description": "the report's file, sandboxed (Content-Security-Policy)"}},
)
@query_token("download")
async def report_file(
    run_id: Id, artifact_id: Id, access_token: str, file: str, request: Request, state: StateDep, _: UserDep
) -> StreamingResponse:
    """One file of the report whose entry page is artifact ``artifact_id`` of run ``run_id``:
    ``file`` is relative to the entry's directory (the entry itself: its base name)."""
    try:
        rel = clean_relative(file, "report file")
    except UnsafePath as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc
    async with state.runtime.db.session() as session:
        entry = await session.get(Artifact, artifact_id)
        if entry is None or entry.run_id != run_id or not entry.report_entry:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id} has no report {artifact_id}")
        root = posixpath.dirname(entry.path)
        path = posixpath.normpath(posixpath.join(root, rel)) if root else rel
        art = (
            await session.execute(select(Artifact).where(Artifact.job_id == entry.job_id, Artifact.path == path))
        ).scalar_one_or_none()
    if art is None or rel == ".":
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"report {artifact_id} has no file {file!r}")
    store = blob_store(state.runtime.settings)
    resp = blob_response(
        store, art.sha256, art.size, posixpath.basename(art.path), request.headers.get("range"), media_type(art.path)
    )
    resp.headers["Content-Disposition"] = "inline"
    resp.headers["Content-Security-Policy"] = REPORT_CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Cache-Control"] = "private, no-store"
    return resp
