"""Login checks off the event loop, login backoff, and which bodies are capped how."""

from __future__ import annotations

import asyncio
import json

from kraken.api.limits import JSON_LIMIT, WEBHOOK_LIMIT, body_limit
from kraken.api.login_limits import Backoff, LoginLimits
from kraken.core.security import check_password, hash_password


async def test_password_checks_leave_the_event_loop_free() -> None:
    hashed = hash_password("right")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.002)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    # four at once, as four login loops would: the loop keeps turning while argon2 works
    results = await asyncio.gather(*(check_password(pw, hashed) for pw in ("right", "wrong", "x", "right")))
    await asyncio.gather(check_password("x", None))  # an unknown user: the same work, False
    task.cancel()
    assert results == [True, False, False, True]
    assert ticks >= 10, ticks  # blocked on the loop, argon2 lets no tick through


def test_backoff_doubles_after_the_free_failures_and_is_capped() -> None:
    b = Backoff(free=2, base=1.0, cap=8.0)
    waits = []
    for _ in range(7):
        waits.append(b.wait("k", now=100.0))
        b.failed("k", now=100.0)
    assert waits == [0.0, 0.0, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert b.wait("k", now=108.0) == 0.0  # the wait is counted from the last failure
    for _ in range(10_000):  # a long attack does not overflow the delay
        b.failed("k", now=200.0)
    assert b.wait("k", now=200.0) == 8.0


def test_success_clears_the_user_not_the_address() -> None:
    limits = LoginLimits(per_user=1, per_address=1)
    limits.failed("10.0.0.1", "alice")
    assert limits.retry_after("10.0.0.1", "bob") >= 1  # the address is blocked for every name
    assert limits.retry_after("10.0.0.2", "alice") >= 1  # the name from every address
    limits.succeeded("alice")
    assert limits.retry_after("10.0.0.2", "alice") == 0
    assert limits.retry_after("10.0.0.1", "bob") >= 1


def test_body_limits_by_route() -> None:
    assert body_limit("POST", "/api/projects") == JSON_LIMIT
    assert body_limit("POST", "/api/webhooks/1/github") == WEBHOOK_LIMIT
    # streamed uploads are limited by their routes (artifact and cache size settings)
    assert body_limit("PUT", "/api/agent/jobs/12/artifacts") is None
    assert body_limit("PUT", "/api/agent/jobs/12/cache") is None
    assert body_limit("POST", "/api/agent/jobs/12/cache") == JSON_LIMIT


async def test_a_422_echoing_a_lone_surrogate_is_still_json() -> None:
    """The validation error handler: the input it echoes may hold a lone surrogate (not UTF-8)."""
    from fastapi.exceptions import RequestValidationError

    from kraken.api.app import validation_error

    exc = RequestValidationError([{"type": "string_type", "loc": ("body", "name"), "msg": "bad", "input": "\ud800"}])
    response = await validation_error(None, exc)  # type: ignore[arg-type]
    assert response.status_code == 422
    body = bytes(response.body)
    assert body.isascii() and json.loads(body)["detail"][0]["input"] == "\ud800"  # escaped, as JSON allows
