"""OpenID Connect settings are refused at start when incomplete or wrong, naming the setting;
the client secret is never shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from kraken.api.routes.oidc import safe_next_path
from kraken.core.config import Settings

COMPLETE = {
    "oidc_issuer": "https://sso.example.org/realms/ci",
    "oidc_client_id": "kraken",
    "oidc_client_secret": "client-secret-1",
    "public_url": "https://ci.example.org",
}


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"oidc_client_id": "kraken"}, "oidc_issuer: needed"),
        ({"oidc_admin_groups": ["admins"]}, "oidc_issuer: needed"),
        ({"oidc_group_roles": {"devs": {"p": "member"}}}, "oidc_issuer: needed"),
        ({**COMPLETE, "oidc_client_secret": None}, "KRAKEN_OIDC_CLIENT_SECRET"),
        ({**COMPLETE, "oidc_client_id": None}, "KRAKEN_OIDC_CLIENT_ID"),
        ({**COMPLETE, "public_url": None}, "KRAKEN_PUBLIC_URL"),
        ({**COMPLETE, "public_url": "ci.example.org"}, "public_url: 'ci.example.org' is not an http(s):// URL"),
        ({**COMPLETE, "oidc_issuer": "http://sso.example.org"}, "oidc_issuer: 'http://sso.example.org' is not an"),
        ({**COMPLETE, "oidc_issuer": "sso.example.org"}, "is not an https:// URL"),
        ({**COMPLETE, "oidc_issuer": "https://sso.example.org?x=1"}, "is not an https:// URL"),
        ({**COMPLETE, "oidc_scopes": ["profile"]}, "oidc_scopes: must hold openid"),
        ({**COMPLETE, "oidc_group_roles": {"devs": {"p": "boss"}}}, "oidc_group_roles.devs.p"),
        ({**COMPLETE, "oidc_timeout": 0}, "oidc_timeout"),
        ({**COMPLETE, "oidc_display_name": ""}, "oidc_display_name"),
    ],
)
def test_bad_oidc_settings_are_refused(given: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(**given)  # type: ignore[arg-type]
    assert message in str(caught.value)


def test_complete_oidc_settings_hide_the_secret_and_give_the_redirect_url() -> None:
    settings = Settings(**COMPLETE)  # type: ignore[arg-type]
    assert "client-secret-1" not in repr(settings) and settings.oidc_client_secret is not None
    assert settings.oidc_redirect_url == "https://ci.example.org/api/auth/oidc/callback"
    local = Settings(**{**COMPLETE, "oidc_issuer": "http://127.0.0.1:8000/openid"})  # type: ignore[arg-type]
    assert local.oidc_issuer == "http://127.0.0.1:8000/openid"


def test_a_server_with_bad_oidc_settings_does_not_start(tmp_path: Path) -> None:
    """``kraken serve`` reads its settings before anything else: the message names the setting."""
    root = str(Path(__file__).resolve().parents[2])
    env = {
        "KRAKEN_OIDC_ISSUER": "https://sso.example.org",
        "KRAKEN_OIDC_CLIENT_ID": "kraken",
        "KRAKEN_OIDC_SCOPES": '["profile"]',
        "KRAKEN_OIDC_CLIENT_SECRET": "the-client-secret",
        "PYTHONPATH": root,
    }
    done = subprocess.run(
        [sys.executable, "-m", "kraken", "serve", "--data-dir", str(tmp_path), "--no-local-agent"],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "kraken: the settings are wrong" in done.stderr and "KRAKEN_PUBLIC_URL" in done.stderr, done.stderr
    assert "the-client-secret" not in done.stderr + done.stdout and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("/projects/3?tab=flows", "/projects/3?tab=flows"),
        (None, "/"),
        ("", "/"),
        ("//evil.example.org/x", "/"),
        ("/\\evil.example.org", "/"),
        ("/a\\b", "/"),
        ("https://evil.example.org", "/"),
        ("projects", "/"),
    ],
)
def test_the_page_to_return_to_is_a_path_of_kraken(given: str | None, kept: str) -> None:
    """No open redirect through ``/api/auth/oidc/start?next=…``."""
    assert safe_next_path(given) == kept
