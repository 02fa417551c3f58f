"""Kraken's HS256 tokens (``kraken.core.jwt_hs256``) against PyJWT: each reads the other's tokens,
and every token PyJWT refuses with the options Kraken used is refused too."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from kraken.core import jwt_hs256

KEY = "a signing key of 64 bytes or more (HS512 cases too), 0123456789abcdef"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _pyjwt_reads(token: str, key: str = KEY, **kw: Any) -> dict[str, Any] | str:
    try:
        return dict(jwt.decode(token, key, algorithms=["HS256"], **kw))
    except jwt.PyJWTError as exc:
        return type(exc).__name__


def test_the_tokens_are_pyjwts_byte_for_byte() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    claims = {"sub": "ann", "gen": 2, "iat": now, "exp": now + timedelta(minutes=5), "name": "Ånn ✓"}
    assert jwt_hs256.encode(claims, KEY) == jwt.encode(claims, KEY, algorithm="HS256")
    assert jwt_hs256.encode(claims, KEY.encode()) == jwt.encode(claims, KEY.encode(), algorithm="HS256")


def test_each_reads_the_others_tokens() -> None:
    now = datetime.now(UTC)
    claims = {"sub": "ann", "gen": 0, "pur": "events", "iat": now, "exp": now + timedelta(minutes=1)}
    ours, theirs = jwt_hs256.encode(claims, KEY), jwt.encode(claims, KEY, algorithm="HS256")
    expected = {**claims, "iat": int(now.timestamp()), "exp": int((now + timedelta(minutes=1)).timestamp())}
    assert jwt_hs256.decode(theirs, KEY, require=("exp", "sub", "pur")) == expected
    assert _pyjwt_reads(ours, options={"require": ["exp", "sub", "pur"]}) == expected


def _forged(header: dict[str, Any] | bytes, payload: dict[str, Any] | bytes, key: str = KEY) -> str:
    import hashlib
    import hmac

    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    p = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = f"{_b64(h)}.{_b64(p)}"
    return signing_input + "." + _b64(hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest())


def _tampered(token: str) -> str:
    header, _, signature = token.split(".")
    forged = _b64(b'{"sub":"root","exp":9999999999}')
    return f"{header}.{forged}.{signature}"


NOW = int(time.time())  # the valid tokens below stay valid for an hour, however slow the machine
HS = {"alg": "HS256", "typ": "JWT"}
REFUSED: dict[str, str] = {
    "expired": jwt.encode({"sub": "a", "exp": NOW - 5}, KEY, algorithm="HS256"),
    "expires now or earlier": jwt.encode({"sub": "a", "exp": NOW - 1}, KEY, algorithm="HS256"),
    "another key": jwt.encode({"sub": "a", "exp": NOW + 3600}, KEY + "x", algorithm="HS256"),
    "algorithm none": jwt.encode({"sub": "a", "exp": NOW + 3600}, None, algorithm="none"),
    "algorithm HS512": jwt.encode({"sub": "a", "exp": NOW + 3600}, KEY, algorithm="HS512"),
    "alg none with a signature": _forged({"alg": "none"}, {"sub": "a", "exp": NOW + 3600}),
    "issued in the future": jwt.encode({"sub": "a", "exp": NOW + 36000, "iat": NOW + 3000}, KEY, algorithm="HS256"),
    "not valid before later": jwt.encode({"sub": "a", "exp": NOW + 36000, "nbf": NOW + 3000}, KEY, algorithm="HS256"),
    "exp not a number": _forged(HS, {"sub": "a", "exp": "soon"}),
    "iat not a number": _forged(HS, {"sub": "a", "exp": NOW + 3600, "iat": [1]}),
    "sub not a string": _forged(HS, {"sub": 7, "exp": NOW + 3600}),
    "jti not a string": _forged(HS, {"sub": "a", "exp": NOW + 3600, "jti": 7}),
    "an audience where none is expected": _forged(HS, {"sub": "a", "exp": NOW + 3600, "aud": "x"}),
    "payload not an object": _forged(HS, b"[1, 2]"),
    "payload not JSON": _forged(HS, b"{nope"),
    "header not an object": _forged(b'"HS256"', {"sub": "a"}),
    "crit header": _forged({**HS, "crit": ["exp"]}, {"sub": "a", "exp": NOW + 3600}),
    "two segments": "a.b",
    "garbage": "not a token at all",
    "tampered payload": _tampered(jwt.encode({"sub": "a", "exp": NOW + 3600}, KEY, algorithm="HS256")),
    "stray characters": jwt.encode({"sub": "a", "exp": NOW + 3600}, KEY, algorithm="HS256")[:-3] + "!" + "é",
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_pyjwt_refuses_is_refused(case: str) -> None:
    token = REFUSED[case]
    assert isinstance(_pyjwt_reads(token), str), "the case must be one PyJWT refuses"
    with pytest.raises(jwt_hs256.TokenError):
        jwt_hs256.decode(token, KEY)


def test_expiry_is_told_apart() -> None:
    with pytest.raises(jwt_hs256.TokenExpired):
        jwt_hs256.decode(REFUSED["expired"], KEY)
    with pytest.raises(jwt_hs256.TokenError) as refused:
        jwt_hs256.decode(REFUSED["another key"], KEY)
    assert not isinstance(refused.value, jwt_hs256.TokenExpired)


def test_required_claims_and_audience() -> None:
    no_exp = jwt.encode({"sub": "a"}, KEY, algorithm="HS256")
    assert jwt_hs256.decode(no_exp, KEY) == {"sub": "a"}
    with pytest.raises(jwt_hs256.TokenError, match="'exp'"):
        jwt_hs256.decode(no_exp, KEY, require=("exp",))
    assert _pyjwt_reads(no_exp, options={"require": ["exp"]}) == "MissingRequiredClaimError"

    for aud, accepted in (("flow", True), (["other", "flow"], True), ("other", False), (None, False), (7, False)):
        claims: dict[str, Any] = {"exp": NOW + 3600, **({"aud": aud} if aud is not None else {})}
        token = _forged(HS, claims)
        theirs = _pyjwt_reads(token, audience="flow")
        assert isinstance(theirs, dict) is accepted, (aud, theirs)
        if accepted:
            assert jwt_hs256.decode(token, KEY, audience="flow") == claims
        else:
            with pytest.raises(jwt_hs256.TokenError):
                jwt_hs256.decode(token, KEY, audience="flow")


def test_an_empty_key_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        jwt_hs256.encode({"sub": "a"}, "")
