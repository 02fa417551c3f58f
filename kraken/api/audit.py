"""The audit log, written in one place: every successful change (POST, PUT, PATCH, DELETE) made
through the API by a person or a token gets an ``audit_entry``, whatever the route.

``AuditLog`` is an ASGI middleware: it knows the caller from ``request.state.principal`` (set by
``kraken.api.deps.current_principal``), the project from ``request.state.project_id`` (set by
the role check, ``kraken.api.authz.check_project``, before the change, so a deleted resource
keeps its project), the action from the route's endpoint and the resource from the address.
Requests without a person (agents, incoming webhooks, log-ins) have no principal and are not
recorded.  The entry is written after the route succeeded (status < 400) and before the answer
leaves, so a client that saw success finds the entry.

Routes add nothing for the common case; a route that changes settings adds their values before
and after with ``audit_change`` (``redact`` blanks anything secret-like: the log never holds a
secret's value, a password or a token, because request bodies are never recorded and what a
route records is redacted).  ``not_audited`` marks POST routes that change nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kraken.models.audit import AuditEntry

log = logging.getLogger(__name__)

CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
NOT_AUDITED_ATTR = "__kraken_not_audited__"
SECRET_WORDS = ("secret", "password", "token", "value", "key", "credential")
REDACTED = "***"
F = TypeVar("F", bound=Callable[..., Any])


def not_audited(endpoint: F) -> F:
    """Marks a POST route that changes nothing (a check, a short-lived stream token)."""
    setattr(endpoint, NOT_AUDITED_ATTR, True)
    return endpoint


def redact(value: Any) -> Any:
    """``value`` with every entry whose key sounds secret (secret, password, token, value, key)
    replaced by ``***``, at any depth."""
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED if any(w in str(k).lower() for w in SECRET_WORDS) else redact(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def audit_change(request: Request, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> None:
    """Records a setting's values before and after the change in the request's audit entry
    (redacted; JSON-encodable values: dates become strings)."""
    notes = _notes(request.scope)
    notes["before"] = redact(json.loads(json.dumps(before, default=str))) if before is not None else None
    notes["after"] = redact(json.loads(json.dumps(after, default=str))) if after is not None else None


def audit_project(request: Request, project_id: int) -> None:
    """The project of a change whose route has no project in its address (a new project)."""
    request.state.project_id = project_id


def _notes(scope: Scope) -> dict[str, Any]:
    state: dict[str, Any] = scope.setdefault("state", {})
    notes: dict[str, Any] = state.setdefault("audit_notes", {})
    return notes


def _resource(scope: Scope) -> str:
    path: str = scope.get("path", "")
    return path.removeprefix("/api")[:500]


def _created_id(body: bytes, headers: list[tuple[bytes, bytes]]) -> int | None:
    if not any(k.lower() == b"content-type" and v.startswith(b"application/json") for k, v in headers):
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    found = data.get("id") if isinstance(data, dict) else None
    return found if isinstance(found, int) and not isinstance(found, bool) else None


class AuditLog:
    """The middleware (see the module's doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in CHANGES:
            await self.app(scope, receive, send)
            return
        held: list[Message] = []
        body = bytearray()
        passing = False

        async def hold(message: Message) -> None:
            nonlocal passing
            if passing:
                await send(message)
                return
            if message["type"] == "http.response.start":
                principal = scope.get("state", {}).get("principal")
                endpoint = scope.get("endpoint")
                if principal is None or message["status"] >= 400 or getattr(endpoint, NOT_AUDITED_ATTR, False):
                    passing = True
                    await send(message)
                    return
                held.append(message)
                return
            if message["type"] == "http.response.body" and held:
                body.extend(message.get("body", b""))
                held.append(message)
                if message.get("more_body", False):
                    return
                passing = True
                await self._record(scope, held[0], bytes(body))
                for m in held:
                    await send(m)
                return
            await send(message)

        await self.app(scope, receive, hold)

    async def _record(self, scope: Scope, start: Message, body: bytes) -> None:
        state: dict[str, Any] = scope.get("state", {})
        principal = state["principal"]
        endpoint = scope.get("endpoint")
        details: dict[str, Any] = dict(state.get("audit_notes", {}))
        created = _created_id(body, start.get("headers", [])) if start["status"] == 201 else None
        if created is not None:
            details["id"] = created
        client = scope.get("client")
        entry = AuditEntry(
            user_id=principal.user.id,
            username=principal.user.username,
            token_id=principal.token_id,
            action=str(getattr(endpoint, "__name__", "unknown"))[:100],
            method=str(scope["method"]),
            resource=_resource(scope),
            project_id=state.get("project_id"),
            client_ip=client[0][:64] if client else None,
            status=int(start["status"]),
            details=details,
        )
        try:
            async with scope["app"].state.kraken.runtime.db.transaction(quick=True) as session:
                session.add(entry)
        except Exception:  # the change is committed: its answer still goes out
            log.exception("the audit entry of %s %s could not be written", scope["method"], scope.get("path"))
