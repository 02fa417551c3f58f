"""The client's HTTP side (httpx, imported only when a client command runs): JSON calls,
server-sent events and downloads, with the server's error messages passed on as they are."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from kraken.client.config import Credentials

TIMEOUT = httpx.Timeout(30.0, read=None)


class ApiError(Exception):
    """A refused request: the status and the server's own explanation."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _detail(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text.strip() or r.reason_phrase
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, list):  # FastAPI's validation errors: name the field
        where = (".".join(str(p) for p in d.get("loc", [])[1:]) for d in detail if isinstance(d, dict))
        msgs = (d.get("msg", "") for d in detail if isinstance(d, dict))
        return "; ".join(f"{w}: {m}" for w, m in zip(where, msgs, strict=False))
    return str(detail)


def _check(r: httpx.Response) -> httpx.Response:
    if r.status_code >= 400:
        raise ApiError(r.status_code, f"{r.request.method} {r.request.url.path}: {r.status_code} {_detail(r)}")
    return r


class Client:
    def __init__(self, creds: Credentials) -> None:
        self.http = httpx.Client(
            base_url=creds.url + "/api", headers={"Authorization": f"Bearer {creds.token}"}, timeout=TIMEOUT
        )

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, **params: Any) -> Any:
        query = {k: v for k, v in params.items() if v is not None}
        return _check(self.http.get(path, params=query)).json()

    def send(self, method: str, path: str, body: Any = None) -> Any:
        r = _check(self.http.request(method, path, json=body))
        return r.json() if r.content else None

    def text(self, path: str) -> Iterator[str]:
        with self.http.stream("GET", path) as r:
            if r.status_code >= 400:
                r.read()
                _check(r)
            yield from r.iter_text()

    def events(self, path: str, read_timeout: float | None = None) -> Iterator[tuple[str, Any]]:
        """Server-sent events as (event name, decoded data), for as long as the stream lasts; a
        keepalive comes as ("", None) so that a waiting caller can check its clock."""
        timeout = httpx.Timeout(30.0, read=read_timeout)
        with self.http.stream("GET", path, timeout=timeout) as r:
            if r.status_code >= 400:
                r.read()
                _check(r)
            name = "message"
            for line in r.iter_lines():
                if line.startswith(":"):
                    yield "", None
                elif line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    yield name, json.loads(line[6:])
                    name = "message"

    def download(self, path: str, dest: Path) -> int:
        """Writes the body to ``dest`` (through a temporary file: a cut download leaves nothing)."""
        tmp = dest.with_name(dest.name + ".part")
        size = 0
        with self.http.stream("GET", path) as r:
            if r.status_code >= 400:
                r.read()
                _check(r)
            with tmp.open("wb") as f:
                for chunk in r.iter_bytes():
                    f.write(chunk)
                    size += len(chunk)
        tmp.replace(dest)
        return size


def login_with_password(url: str, username: str, password: str) -> str:
    with httpx.Client(base_url=url.rstrip("/") + "/api", timeout=30) as http:
        r = _check(http.post("/auth/login", json={"username": username, "password": password}))
        return str(r.json()["access_token"])
