"""Every route of the API says what it answers: a JSON answer has a schema in /openapi.json (the
UI's types are generated from it). Only streams (server-sent events, file bytes) have none."""

from __future__ import annotations

from typing import Any

from kraken.api.app import create_app
from kraken.core.config import Settings
from kraken.runtime import Runtime

STREAMS = {
    ("get", "/api/events"),  # server-sent events
    ("get", "/api/jobs/{job_id}/log/stream"),  # server-sent events
    ("get", "/api/artifacts/{artifact_id}/content"),  # the artifact's bytes
    ("get", "/api/agent/jobs/{job_id}/artifacts/{artifact_id}"),  # the artifact's bytes
    ("get", "/api/agent/jobs/{job_id}/cache/{entry_id}"),  # the cache entry's bytes
}


def untyped(op: dict[str, Any]) -> list[str]:
    out = []
    for code, resp in op["responses"].items():
        if not code.startswith("2") or code == "204":
            continue
        for media, body in (resp.get("content") or {}).items():
            schema = body.get("schema") or {}
            if media == "application/json" and not schema:
                out.append(code)
    return out


def test_every_json_route_has_a_response_model() -> None:
    spec = create_app(Runtime(Settings(), "serve")).openapi()
    found = {(method, path) for path, ops in spec["paths"].items() for method, op in ops.items() if untyped(op)}
    assert found == STREAMS
    # the results routes' shapes are named, so that the UI's generated types are
    schemas = spec["components"]["schemas"]
    assert {"ResultsPage", "TestResultOut", "RunSummaryOut", "FlowSummaryOut", "IssuesPage", "TestHistoryOut"} <= set(
        schemas
    )
    assert "not-run" in schemas["RunSummaryOut"]["properties"]
