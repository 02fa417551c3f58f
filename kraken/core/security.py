"""Passwords (argon2), login tokens (JWT) and constant-time token comparison.

argon2 takes about 180 ms of CPU per check: checks run in a small thread pool, never on the
event loop, and no more of them wait at once than the pool can run (the rest wait in asyncio).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from kraken.core.clock import utcnow

_hasher = PasswordHasher()
ALGORITHM = "HS256"
HASH_THREADS = 2
_pool = ThreadPoolExecutor(max_workers=HASH_THREADS, thread_name_prefix="argon2")
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, hashed: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def _check(password: str, hashed: str | None) -> bool:
    if hashed is None:  # an unknown user costs the same time as a wrong password
        verify_password(password, _decoy_hash())
        return False
    return verify_password(password, hashed)


async def check_password(password: str, hashed: str | None) -> bool:
    """``verify_password`` off the event loop; ``hashed`` None (no such user) is always False,
    after the same work as a real check."""
    loop = asyncio.get_running_loop()
    slots = _slots.setdefault(loop, asyncio.Semaphore(HASH_THREADS))
    async with slots:
        return await loop.run_in_executor(_pool, _check, password, hashed)


async def hash_password_async(password: str) -> str:
    """``hash_password`` off the event loop, in the same pool as the checks."""
    loop = asyncio.get_running_loop()
    slots = _slots.setdefault(loop, asyncio.Semaphore(HASH_THREADS))
    async with slots:
        return await loop.run_in_executor(_pool, hash_password, password)


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def create_access_token(username: str, key: str, minutes: int, generation: int = 0) -> str:
    """A login token: the user's name and token generation (raising it ends the token), with an expiry."""
    now = utcnow()
    payload = {"sub": username, "gen": generation, "iat": now, "exp": now + timedelta(minutes=minutes)}
    return jwt.encode(payload, key, algorithm=ALGORITHM)


def read_access_token(token: str, key: str) -> tuple[str, int] | None:
    """The username and token generation of a valid, unexpired login token, else None.
    A token without ``exp`` is refused."""
    try:
        payload = jwt.decode(token, key, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]})
    except jwt.PyJWTError:
        return None
    if "pur" in payload:  # a stream/download token is for the address of its purpose only
        return None
    sub, gen = payload.get("sub"), payload.get("gen", 0)
    if not isinstance(sub, str) or not isinstance(gen, int):
        return None
    return sub, gen


STREAM_PURPOSES = ("events", "download")
"""What a short-lived query-string token may open: a live stream, or a download."""


def create_stream_token(
    username: str, key: str, purpose: str, seconds: int, generation: int, api_token_id: int | None = None
) -> tuple[str, datetime]:
    """A token for the address (``?access_token=``) of one purpose, valid ``seconds``: an
    EventSource or a download link cannot send a header, and an address ends up in logs and
    histories, so what it carries must be short-lived and good for nothing else."""
    import jwt  # here, not at the top: PyJWT loads cryptography, which an idle process does not need

    now = utcnow()
    expires = now + timedelta(seconds=seconds)
    payload: dict[str, object] = {"sub": username, "gen": generation, "pur": purpose, "iat": now, "exp": expires}
    if api_token_id is not None:
        payload["pat"] = api_token_id
    return jwt.encode(payload, key, algorithm=ALGORITHM), expires


@dataclass(frozen=True)
class StreamClaims:
    username: str
    generation: int
    purpose: str
    api_token_id: int | None


def read_stream_token(token: str, key: str) -> StreamClaims | None:
    """The claims of a valid, unexpired stream token, else None (a login token is not one)."""
    import jwt  # here, not at the top: PyJWT loads cryptography, which an idle process does not need

    try:
        payload = jwt.decode(token, key, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "pur"]})
    except jwt.PyJWTError:
        return None
    sub, gen, pur, pat = payload.get("sub"), payload.get("gen", 0), payload.get("pur"), payload.get("pat")
    if not isinstance(sub, str) or not isinstance(gen, int) or pur not in STREAM_PURPOSES:
        return None
    if pat is not None and not isinstance(pat, int):
        return None
    return StreamClaims(sub, gen, str(pur), pat)


PAT_PREFIX = "kpat_"


def new_api_token() -> str:
    """A personal access token: recognisable by its prefix, 256 random bits."""
    return PAT_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What is stored of a personal access token (its SHA-256: the token is random, no salt needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
