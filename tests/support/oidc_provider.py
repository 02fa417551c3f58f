"""A real OpenID Connect provider for the tests: ``django-oidc-provider`` in a tiny Django site
(``tests/support/oidc_site``) on a free port, with its own SQLite database, users, groups, one
confidential client and an RSA signing key that the test holds (to sign forged tokens with it).

``runserver --noreload`` runs as a child of the test; readiness is its discovery document.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import missing_service
from tests.support.procs import free_port

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID = "kraken-test-client"
CLIENT_SECRET = "oidc-client-secret-1"


class OidcProvider:
    def __init__(self, workdir: Path, users: dict[str, str], groups: dict[str, list[str]], redirect_uri: str) -> None:
        try:
            import django  # noqa: F401
            import oidc_provider  # noqa: F401
        except ImportError as exc:
            missing_service("django-oidc-provider (pip install -e '.[dev]')", exc)
        self.dir = workdir / "oidc-provider"
        self.dir.mkdir(parents=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.issuer = f"{self.url}/openid"
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_key = key
        self.key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ).decode()
        spec = {
            "users": users,
            "groups": groups,
            "rsa_key": self.key_pem,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uri": redirect_uri,
        }
        (self.dir / "setup.json").write_text(json.dumps(spec))
        self.env = {
            **os.environ,
            "OIDC_SITE_DIR": str(self.dir),
            "OIDC_SITE_URL": self.url,
            "DJANGO_SETTINGS_MODULE": "tests.support.oidc_site.settings",
            "PYTHONPATH": str(ROOT),
        }
        self._run([sys.executable, "-m", "django", "migrate", "--noinput"])
        self._run([sys.executable, "-m", "tests.support.oidc_site.setup"])
        self.proc: subprocess.Popen[bytes] | None = None

    def _run(self, argv: list[str]) -> None:
        done = subprocess.run(argv, env=self.env, cwd=ROOT, capture_output=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[2:])} failed: {done.stderr.decode()[-3000:]}")

    def start(self) -> None:
        log = (self.dir / "provider.log").open("ab")
        argv = [sys.executable, "-m", "django", "runserver", "--noreload", f"127.0.0.1:{self.port}"]
        self.proc = subprocess.Popen(argv, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:  # ready when it answers its discovery document
            try:
                if httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log_text = (self.dir / "provider.log").read_text()[-3000:]
                raise RuntimeError(f"the OIDC provider did not start: {log_text}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
        self.proc = None

    def recreate_user(self, username: str, password: str) -> None:
        """Delete the provider's user and create another under the same name (a new ``sub``):
        what a provider does when a name is given to someone else."""
        code = (
            "from django.contrib.auth.models import User; "
            f"User.objects.filter(username={username!r}).delete(); "
            f"User.objects.create_user(username={username!r}, password={password!r})"
        )
        self._run([sys.executable, "-m", "django", "shell", "-c", code])

    def env_for_kraken(self, public_url: str, **extra: str) -> dict[str, str]:
        """The ``KRAKEN_OIDC_*`` settings of a Kraken server (at ``public_url``) that logs in here."""
        return {
            "KRAKEN_PUBLIC_URL": public_url,
            "KRAKEN_OIDC_ISSUER": self.issuer,
            "KRAKEN_OIDC_CLIENT_ID": CLIENT_ID,
            "KRAKEN_OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "KRAKEN_OIDC_SCOPES": '["openid", "profile", "email", "groups"]',
            "KRAKEN_OIDC_DISPLAY_NAME": "Test SSO",
            **extra,
        }


HIDDEN = re.compile(r'<input name="(\w+)" type="hidden" value="([^"]*)"')
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


async def authorize(authorize_url: str, username: str, password: str, allow: bool = True) -> str:
    """What a browser does at the provider, without one: follow ``authorize_url`` to the login
    form, log in, answer the consent form; the URL the provider sends back to (Kraken's callback)."""
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.get(authorize_url)
        assert r.status_code == 302, r.text
        login_url = httpx.URL(authorize_url).join(r.headers["location"])
        r = await http.get(login_url)
        csrf = CSRF.search(r.text)
        assert csrf is not None, r.text
        r = await http.post(
            login_url,
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": csrf.group(1),
                "next": login_url.params["next"],
            },
            headers={"Referer": str(login_url)},
        )
        assert r.status_code == 302, f"the provider refused the login of {username}: {r.text[-500:]}"
        r = await http.get(login_url.join(r.headers["location"]))  # the consent page
        assert r.status_code == 200 and "Request for Permission" in r.text, r.text[-1000:]
        form = {name: html.unescape(value) for name, value in HIDDEN.findall(r.text)}
        csrf = CSRF.search(r.text)
        assert csrf is not None
        form["csrfmiddlewaretoken"] = csrf.group(1)
        if allow:
            form["allow"] = "Authorize"
        r = await http.post(login_url.join("/openid/authorize"), data=form, headers={"Referer": str(login_url)})
        assert r.status_code == 302, r.text[-1000:]
        return str(r.headers["location"])
