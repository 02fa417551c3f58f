"""JSON Web Tokens signed with HMAC-SHA256 (RFC 7519, ``alg: HS256``), with the standard library.

Kraken signs its own tokens this way: login and stream tokens (``kraken.core.security``), job
transfer tokens (``kraken.artifacts.tokens``) and the OpenID Connect login's flow cookie.  PyJWT
makes and reads the same tokens, but importing it loads ``cryptography`` (about 11 MB of a
server's memory, issue #13), which only the OpenID Connect login needs: to verify a provider's
RS256 ID tokens (``kraken.core.oidc``, which imports PyJWT where it is used).

The checks are PyJWT's for the options Kraken uses (``tests/unit/test_jwt_hs256.py`` compares
both): the header's ``alg`` must be HS256 (never ``none``), the signature is compared in constant
time, ``exp`` must be in the future, ``iat`` and ``nbf`` not, claims listed in ``require`` must be
there, and ``aud`` must be the expected audience (a token with an audience is refused where none
is expected).  Tokens are compact JWS only; no other header extension (``crit``, ``b64``) is accepted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from calendar import timegm
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

ALGORITHM = "HS256"
_HEADER = b'{"alg":"HS256","typ":"JWT"}'  # PyJWT's header for HS256, byte for byte
_TIME_CLAIMS = ("exp", "iat", "nbf")
_SEGMENT = re.compile(rb"[A-Za-z0-9_-]*")


class TokenError(ValueError):
    """The token is malformed, not signed with the key, or its claims are not valid."""


class TokenExpired(TokenError):
    """The token was valid, but its ``exp`` has passed."""


def _b64encode(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _b64decode(segment: bytes, what: str) -> bytes:
    if not _SEGMENT.fullmatch(segment) or len(segment) % 4 == 1:
        raise TokenError(f"invalid {what} padding or characters")
    try:
        return base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenError(f"invalid {what}: {exc}") from exc


def _key_bytes(key: str | bytes) -> bytes:
    raw = key.encode() if isinstance(key, str) else key
    if not raw:
        raise ValueError("an HMAC key must not be empty")
    return raw


def _sign(signing_input: bytes, key: bytes) -> bytes:
    return hmac.new(key, signing_input, hashlib.sha256).digest()


def encode(claims: Mapping[str, Any], key: str | bytes) -> str:
    """A signed token of ``claims``; ``exp``, ``iat`` and ``nbf`` given as datetimes become
    seconds since the epoch (as PyJWT writes them)."""
    payload = {
        k: timegm(v.utctimetuple()) if k in _TIME_CLAIMS and isinstance(v, datetime) else v for k, v in claims.items()
    }
    signing_input = _b64encode(_HEADER) + b"." + _b64encode(json.dumps(payload, separators=(",", ":")).encode())
    return (signing_input + b"." + _b64encode(_sign(signing_input, _key_bytes(key)))).decode()


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise TokenError(f"invalid {what}: {exc}") from exc
    if not isinstance(value, dict):
        raise TokenError(f"invalid {what}: must be a JSON object")
    return value


def _seconds(claims: Mapping[str, Any], name: str) -> int:
    try:
        return int(claims[name])
    except (ValueError, TypeError, OverflowError):
        raise TokenError(f"the claim {name!r} must be an integer") from None


def decode(token: str, key: str | bytes, *, require: Iterable[str] = (), audience: str | None = None) -> dict[str, Any]:
    """The claims of ``token`` once its signature and claims are checked; raises ``TokenExpired``
    for an expired token and ``TokenError`` for every other fault."""
    raw = token.encode("utf-8", "replace")  # a character that cannot be encoded fails the segment check
    try:
        signing_input, signature_segment = raw.rsplit(b".", 1)
        header_segment, payload_segment = signing_input.split(b".", 1)
    except ValueError:
        raise TokenError("not enough segments") from None
    header = _json_object(_b64decode(header_segment, "header"), "header")
    if header.get("alg") != ALGORITHM:
        raise TokenError(f"the algorithm {header.get('alg')!r} is not allowed")
    if "crit" in header or "b64" in header:
        raise TokenError("unsupported header extension")
    payload = _b64decode(payload_segment, "payload")
    signature = _b64decode(signature_segment, "signature")
    if not hmac.compare_digest(_sign(signing_input, _key_bytes(key)), signature):
        raise TokenError("signature verification failed")
    claims = _json_object(payload, "payload")
    for name in require:
        if claims.get(name) is None:
            raise TokenError(f"the token has no {name!r} claim")
    now = time.time()
    for name in ("iat", "nbf"):
        if name in claims and _seconds(claims, name) > now:
            raise TokenError(f"the token is not yet valid ({name})")
    if "exp" in claims and _seconds(claims, "exp") <= now:
        raise TokenExpired("the token has expired")
    _check_audience(claims, audience)
    for name in ("sub", "jti"):
        if name in claims and not isinstance(claims[name], str):
            raise TokenError(f"the claim {name!r} must be a string")
    return claims


def _check_audience(claims: Mapping[str, Any], audience: str | None) -> None:
    given = claims.get("aud")
    if audience is None:
        if given:
            raise TokenError("the token has an audience, none was expected")
        return
    if not given:
        raise TokenError("the token has no 'aud' claim")
    names = [given] if isinstance(given, str) else given
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise TokenError("invalid claim format in token ('aud')")
    if audience not in names:
        raise TokenError("the token's audience is not this one")
