"""OpenID Connect login, the protocol side: discovery, the authorization URL (code flow with PKCE
S256), the code exchange and the ID token's checks (signature from the provider's JWKS, ``iss``,
``aud``/``azp``, ``exp``, ``iat`` (not in the future), ``nonce``), then the user's name and groups (from the ID
token, else from the userinfo endpoint).

Every request to the provider is ``httpx`` async (nothing blocks the event loop); the discovery
document and the keys are cached, the keys fetched again once when a token names a key not seen
yet (the provider rotated them).  A provider that cannot be reached or answers 5xx is
``OidcUnavailable`` (the API answers 503); a refused code or a token that fails a check is
``OidcRefused`` (401).  The browser-side state (state, nonce, verifier) is the API's business.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import jwt

from kraken.core.config import Settings

log = logging.getLogger(__name__)

DISCOVERY_TTL = 3600.0  # seconds a discovery document and its keys are kept
LEEWAY = 60  # seconds of clock difference allowed on exp / iat
# asymmetric algorithms only: "none" and HS* (keyed with the client secret) are refused
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


class OidcUnavailable(Exception):
    """The provider cannot be used now: unreachable, an error of its own, or an unusable answer."""


class OidcRefused(Exception):
    """The provider refused the login, or what it sent fails a check."""


@dataclass(frozen=True)
class Discovery:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None


@dataclass(frozen=True)
class FlowStart:
    """Where to send the browser, and what the callback must find again (kept by the API)."""

    url: str
    state: str
    nonce: str
    verifier: str


@dataclass(frozen=True)
class OidcIdentity:
    username: str
    subject: str
    groups: frozenset[str]


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OidcClient:
    """One per server process: holds the cached discovery document and keys."""

    def __init__(self, settings: Settings) -> None:
        assert settings.oidc_issuer is not None and settings.oidc_client_id is not None
        self.settings = settings
        self.issuer = settings.oidc_issuer.rstrip("/")
        self.client_id = settings.oidc_client_id
        self._discovery: tuple[float, Discovery] | None = None
        self._keys: tuple[float, jwt.PyJWKSet] | None = None
        self._lock = asyncio.Lock()

    async def _get_json(self, url: str, **kw: Any) -> dict[str, Any]:
        return await self._json("GET", url, **kw)

    async def _json(self, method: str, url: str, **kw: Any) -> dict[str, Any]:
        """A JSON object from the provider; 4xx is ``OidcRefused`` (with the provider's ``error``)."""
        import httpx  # only when OIDC is used: an idle server does not load it (tests/unit/test_idle_imports.py)

        try:
            async with httpx.AsyncClient(timeout=self.settings.oidc_timeout) as http:
                r = await http.request(method, url, **kw)
        except httpx.HTTPError as exc:
            raise OidcUnavailable(f"{method} {url}: {exc!r}") from exc
        if r.status_code >= 500 or r.status_code in (408, 429):
            raise OidcUnavailable(f"{method} {url}: HTTP {r.status_code}")
        try:
            body = r.json()
        except ValueError:
            body = None
        if r.status_code >= 400:
            error = body.get("error") if isinstance(body, dict) else None
            raise OidcRefused(f"the provider answered {r.status_code} {error or ''}".strip())
        if not isinstance(body, dict):
            raise OidcUnavailable(f"{method} {url}: the answer is not a JSON object")
        return body

    async def discovery(self) -> Discovery:
        cached = self._discovery
        if cached is not None and time.monotonic() - cached[0] < DISCOVERY_TTL:
            return cached[1]
        async with self._lock:
            if self._discovery is not None and self._discovery is not cached:
                return self._discovery[1]
            url = f"{self.issuer}/.well-known/openid-configuration"
            doc = await self._json_or_unavailable(url)
            try:
                found = Discovery(
                    issuer=str(doc["issuer"]),
                    authorization_endpoint=str(doc["authorization_endpoint"]),
                    token_endpoint=str(doc["token_endpoint"]),
                    jwks_uri=str(doc["jwks_uri"]),
                    userinfo_endpoint=str(doc["userinfo_endpoint"]) if doc.get("userinfo_endpoint") else None,
                )
            except KeyError as exc:
                raise OidcUnavailable(f"{url}: the discovery document has no {exc.args[0]}") from exc
            if found.issuer.rstrip("/") != self.issuer:
                raise OidcUnavailable(f"{url}: the document names the issuer {found.issuer!r}, not {self.issuer!r}")
            self._discovery = (time.monotonic(), found)
            return found

    async def _json_or_unavailable(self, url: str) -> dict[str, Any]:
        """Discovery and keys are the provider's own business: a refusal there means it is unusable."""
        try:
            return await self._get_json(url)
        except OidcRefused as exc:
            raise OidcUnavailable(f"{url}: {exc}") from exc

    async def _key_set(self, refresh: bool) -> jwt.PyJWKSet:
        cached = self._keys
        if cached is not None and not refresh and time.monotonic() - cached[0] < DISCOVERY_TTL:
            return cached[1]
        doc = await self._json_or_unavailable((await self.discovery()).jwks_uri)
        try:
            keys = jwt.PyJWKSet.from_dict(doc)
        except jwt.PyJWTError as exc:
            raise OidcUnavailable(f"the provider's keys cannot be read: {exc}") from exc
        self._keys = (time.monotonic(), keys)
        return keys

    async def _signing_key(self, kid: str | None) -> jwt.PyJWK:
        for refresh in (False, True):  # a key not seen yet: the provider may have rotated them
            keys = (await self._key_set(refresh)).keys
            usable = [k for k in keys if k.public_key_use in (None, "sig")]
            match = [k for k in usable if k.key_id == kid] if kid else usable
            if len(match) == 1:
                return match[0]
        raise OidcRefused(f"the ID token is signed with a key the provider does not publish ({kid})")

    async def start(self) -> FlowStart:
        """A fresh state, nonce and PKCE verifier, and the provider's authorization URL."""
        found = await self.discovery()
        state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.settings.oidc_redirect_url,
                "scope": " ".join(self.settings.oidc_scopes),
                "state": state,
                "nonce": nonce,
                "code_challenge": _challenge(verifier),
                "code_challenge_method": "S256",
            }
        )
        sep = "&" if "?" in found.authorization_endpoint else "?"
        return FlowStart(f"{found.authorization_endpoint}{sep}{query}", state, nonce, verifier)

    async def verify_id_token(self, token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims once every check passes, else ``OidcRefused`` saying which failed."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise OidcRefused(f"the ID token cannot be read: {exc}") from exc
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise OidcRefused(f"the ID token's algorithm {alg!r} is not accepted")
        key = await self._signing_key(header.get("kid"))
        found = await self.discovery()
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.client_id,
                issuer=found.issuer,
                leeway=LEEWAY,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.InvalidSignatureError as exc:
            raise OidcRefused("the ID token's signature is wrong") from exc
        except jwt.PyJWTError as exc:
            raise OidcRefused(f"the ID token is refused: {exc}") from exc
        aud = claims["aud"]
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != self.client_id:
            raise OidcRefused("the ID token is for several clients and its azp is not Kraken's")
        if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"], nonce):
            raise OidcRefused("the ID token's nonce is not the one of this login")
        return claims

    async def finish(self, code: str, verifier: str, nonce: str) -> OidcIdentity:
        """Exchange ``code`` (with the PKCE verifier), check the ID token, read name and groups."""
        found = await self.discovery()
        secret = self.settings.oidc_client_secret
        assert secret is not None
        tokens = await self._json(
            "POST",
            found.token_endpoint,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.settings.oidc_redirect_url,
                "code_verifier": verifier,
                "client_id": self.client_id,
            },
            auth=(self.client_id, secret.get_secret_value()),  # HTTP Basic
            headers={"Accept": "application/json"},
        )
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise OidcRefused("the provider sent no ID token (is 'openid' among the client's scopes?)")
        claims = await self.verify_id_token(id_token, nonce)
        wanted = (self.settings.oidc_username_claim, self.settings.oidc_groups_claim)
        access = tokens.get("access_token")
        if any(c not in claims for c in wanted) and found.userinfo_endpoint and isinstance(access, str):
            info = await self._get_json(found.userinfo_endpoint, headers={"Authorization": f"Bearer {access}"})
            if info.get("sub") != claims["sub"]:
                raise OidcRefused("the userinfo answer is for another subject than the ID token")
            claims = {**info, **claims}
        return self._identity(claims)

    def _identity(self, claims: dict[str, Any]) -> OidcIdentity:
        claim = self.settings.oidc_username_claim
        name = claims.get(claim)
        if not isinstance(name, str) or not name:
            raise OidcRefused(f"the provider gave no '{claim}' claim to name the user (KRAKEN_OIDC_USERNAME_CLAIM)")
        raw = claims.get(self.settings.oidc_groups_claim, [])
        values = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
        return OidcIdentity(name, str(claims["sub"]), frozenset(str(g).lower() for g in values))
