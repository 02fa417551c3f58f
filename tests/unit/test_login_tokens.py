"""Login tokens: an expiry is required, and they carry the user's token generation."""

from __future__ import annotations

from datetime import timedelta

import jwt

from kraken.core.security import ALGORITHM, create_access_token, new_api_token, read_access_token, token_digest
from kraken.models.base import utcnow


def test_login_token_carries_generation() -> None:
    token = create_access_token("ann", "key", 5, generation=3)
    assert read_access_token(token, "key") == ("ann", 3)
    assert read_access_token(token, "other-key") is None


def test_login_token_without_expiry_or_expired_is_refused() -> None:
    assert read_access_token(jwt.encode({"sub": "ann", "gen": 0}, "key", algorithm=ALGORITHM), "key") is None
    old = {"sub": "ann", "gen": 0, "exp": utcnow() - timedelta(seconds=5)}
    assert read_access_token(jwt.encode(old, "key", algorithm=ALGORITHM), "key") is None


def test_api_tokens_are_random_and_hashed() -> None:
    a, b = new_api_token(), new_api_token()
    assert a != b and a.startswith("kpat_") and len(a) > 40
    assert token_digest(a) != token_digest(b) and len(token_digest(a)) == 64 and a not in token_digest(a)
