"""Fixtures of the web UI's end-to-end tests: the built app, a real ``kraken serve`` with a real
agent process, and Debian's Chromium driven by Playwright (never a downloaded browser).

Under CI=true a missing Chromium, Playwright or UI build fails the tests instead of skipping them.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.conftest import IN_CI
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.procs import ADMIN_PASSWORD, Proc, Server, start_agent, wait_agent_connected

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

ROOT = Path(__file__).resolve().parents[2]


def unavailable(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} (CI=true: the UI tests must run)")
    pytest.skip(what)


@pytest.fixture(scope="session")
def web_build() -> Path:
    """The app built into kraken/web (a no-op when it is current)."""
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-frontend.sh"), "--require"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        unavailable(f"the web UI cannot be built:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return ROOT / "kraken" / "web"


@pytest.fixture(scope="package")  # torn down before other packages run: it holds an event loop
def playwright() -> Iterator[Playwright]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        unavailable(f"Chromium is missing at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # An empty profile per session; Playwright passes --user-data-dir itself for launch().
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()


class Kraken:
    """A real ``kraken serve`` (no in-process agent) and one real agent process."""

    def __init__(self, workdir: Path, **env: str) -> None:
        self.workdir = workdir
        self.server = Server(workdir, **env)
        self.url = self.server.url
        self.agent: Proc = start_agent(workdir, self.url, "ui-agent")
        wait_agent_connected(self.agent)
        self.http = httpx.Client(base_url=self.url + "/api", timeout=30)
        r = self.http.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        r.raise_for_status()
        self.token = r.json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {self.token}"

    def get(self, path: str, **kw: Any) -> Any:
        r = self.http.get(path, **kw)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, body: Any = None) -> Any:
        r = self.http.post(path, json=body)
        assert r.is_success, f"{path}: {r.status_code} {r.text}"
        return r.json()

    def stop(self) -> None:
        self.http.close()
        self.agent.stop()
        self.server.stop()


@pytest.fixture
def kraken(web_build: Path, tmp_path: Path) -> Iterator[Kraken]:
    k = Kraken(tmp_path)
    yield k
    k.stop()


@pytest.fixture
def page(browser: Browser, kraken: Kraken) -> Iterator[Page]:
    ctx = browser.new_context(base_url=kraken.url, viewport={"width": 1400, "height": 900})
    ctx.set_default_timeout(20_000)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    # a page that throws while rendering is caught by the app's error boundary, which logs it
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" and m.text.startswith("page error") else None)
    yield pg
    ctx.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


def login(page: Page, password: str = ADMIN_PASSWORD) -> None:
    page.goto("/")
    page.wait_for_url("**/login**")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    if password == ADMIN_PASSWORD:
        page.wait_for_url(lambda url: "/login" not in url)
