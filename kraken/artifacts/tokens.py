"""Job transfer tokens: what an agent shows to upload and download a job's artifacts and cache.

The agent hub issues one with each job assignment.  It names the job and the agent the job went
to, is signed with a key derived from the server's signing key (so it is never a login token,
nor a login token one), and expires with the job's timeout; the endpoints also require the job
to be running on that agent.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

from kraken.models.base import utcnow

ALGORITHM = "HS256"
PURPOSE = "kraken-job-transfer"
SLACK_SECONDS = 300.0  # beyond the job's timeout: the watchdog ends the job by then anyway
MAX_SECONDS = 31 * 24 * 3600.0  # however long a job's timeout


@dataclass(frozen=True)
class JobTransfer:
    job_id: int
    agent_id: int


def _key(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), PURPOSE.encode(), hashlib.sha256).digest()


def issue(secret_key: str, job_id: int, agent_id: int, job_timeout: float, now: datetime | None = None) -> str:
    now = now or utcnow()
    claims = {
        "typ": PURPOSE,
        "job": job_id,
        "agent": agent_id,
        "iat": now,
        "exp": now + timedelta(seconds=min(max(job_timeout, 0.0), MAX_SECONDS) + SLACK_SECONDS),
    }
    return jwt.encode(claims, _key(secret_key), algorithm=ALGORITHM)


def read(token: str, secret_key: str) -> JobTransfer | None:
    """The job and agent of a valid, unexpired transfer token, else None."""
    try:
        claims: dict[str, Any] = jwt.decode(token, _key(secret_key), algorithms=[ALGORITHM])
    except jwt.PyJWTError:
        return None
    job, agent = claims.get("job"), claims.get("agent")
    if claims.get("typ") != PURPOSE or not isinstance(job, int) or not isinstance(agent, int):
        return None
    return JobTransfer(job_id=job, agent_id=agent)


def with_token(job: dict[str, Any], secret_key: str, agent_id: int) -> dict[str, Any]:
    """A job assignment's payload with the transfer token of that job on that agent."""
    timeout = float(job.get("timeout") or 3600.0)
    return {**job, "transfer_token": issue(secret_key, int(job["id"]), agent_id, timeout)}
