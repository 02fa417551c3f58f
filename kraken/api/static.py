"""The web UI: the single-page app built into ``kraken/web`` by ``scripts/build-frontend.sh``.

- ``/assets/*``: the app's files, named by content hash, so cached for a year (``immutable``);
  a pre-compressed ``.gz`` twin is sent to clients that accept gzip.
- every other path outside ``/api`` (``/``, ``/flows/12``, ...): ``index.html``, never cached,
  so deep links work and a new build is picked up at the next page load.
- no build: ``/`` says how to make one.

Pages carry a Content-Security-Policy: scripts, styles, fonts and connections from this origin
only (plus the inline scripts of ``index.html``, allowed by their hash), no framing by anyone.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import re
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import FileResponse, HTMLResponse, Response

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
ASSET_CACHE = "public, max-age=31536000, immutable"
# Paths the API app answers itself; the SPA fallback must not hide their 404s.
RESERVED = ("api/", "openapi.json", "docs", "redoc", "metrics")

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Kraken</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:680px;margin:60px auto;padding:0 20px}
code,pre{background:#f2f3f5;padding:2px 5px;border-radius:4px}pre{padding:10px}</style></head>
<body><h1>Kraken is running, its web UI is not built</h1>
<p>The API works (<a href="/docs">/docs</a>). To build the web UI (Node.js 20 and npm needed), run
from the repository:</p>
<pre>bash scripts/build-frontend.sh</pre>
<p>then reload this page. <code>scripts/run-demo.sh</code> and <code>scripts/setup.sh</code> do it for you.</p>
</body></html>
"""


CSP = (
    "default-src 'self'; script-src 'self'{scripts}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)


@lru_cache(maxsize=4)
def _csp(html: str) -> str:
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(m.group(1).encode()).digest()).decode()}'"
        for m in INLINE_SCRIPT.finditer(html)
    )
    return CSP.format(scripts=hashes)


def _page(path: Path, request: Request) -> Response:
    """index.html, never cached, with the policy that allows exactly its inline scripts."""
    response = _file(path, request, "no-cache")
    response.headers["Content-Security-Policy"] = _csp(path.read_text(encoding="utf-8"))
    return response


def _accepts_gzip(request: Request) -> bool:
    return "gzip" in request.headers.get("accept-encoding", "").lower()


def _file(path: Path, request: Request, cache: str) -> Response:
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if media_type.startswith("text/") or media_type in ("application/javascript", "image/svg+xml"):
        media_type += "; charset=utf-8"
    headers = {"Cache-Control": cache, "Vary": "Accept-Encoding"}
    gz = path.with_name(path.name + ".gz")
    if _accepts_gzip(request) and gz.is_file():
        headers["Content-Encoding"] = "gzip"
        return FileResponse(gz, media_type=media_type, headers=headers)
    return FileResponse(path, media_type=media_type, headers=headers)


def _inside(base: Path, rel: str) -> Path | None:
    """``base/rel`` if it is a file under base (no ``..`` escapes), else None."""
    try:
        target = (base / rel).resolve()
    except (OSError, ValueError):
        return None
    if not target.is_relative_to(base.resolve()) or not target.is_file():
        return None
    return target


def web_router(web_dir: Path = WEB_DIR) -> APIRouter:
    """Routes serving the app from ``web_dir``; include it after the API's routers."""
    router = APIRouter(include_in_schema=False)
    mimetypes.add_type("application/javascript", ".js")
    mimetypes.add_type("text/css", ".css")

    @router.api_route("/assets/{rel:path}", methods=["GET", "HEAD"])
    async def asset(rel: str, request: Request) -> Response:
        target = _inside(web_dir / "assets", rel)
        if target is None or target.suffix == ".gz":
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such file")
        return _file(target, request, ASSET_CACHE)

    @router.api_route("/{rel:path}", methods=["GET", "HEAD"])
    async def app_page(rel: str, request: Request) -> Response:
        if rel.startswith(RESERVED) or rel == "api":
            raise HTTPException(status.HTTP_404_NOT_FOUND, "Not Found")
        index = web_dir / "index.html"
        if not index.is_file():
            return HTMLResponse(NOT_BUILT, headers={"Cache-Control": "no-cache", "Content-Security-Policy": _csp("")})
        # a file at the top of the build (favicon, robots.txt); anything else is a page of the app
        if rel and "/" not in rel and rel != "index.html":
            target = _inside(web_dir, rel)
            if target is not None and target.suffix != ".gz":
                return _file(target, request, "public, max-age=3600")
        return _page(index, request)

    return router
