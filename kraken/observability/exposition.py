"""The text a scrape gets, and who may get it."""

from __future__ import annotations

import hmac

from prometheus_client import generate_latest

from kraken.observability.metrics import REGISTRY


def authorized(header: str | None, token: str | None) -> bool:
    """No token configured: open; else the ``Authorization: Bearer <token>`` header must match."""
    if not token:
        return True
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def render() -> bytes:
    return generate_latest(REGISTRY)
