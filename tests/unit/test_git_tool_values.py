"""The git tool's URL and destination handling (the option-injection cases run in tests/e2e)."""

from __future__ import annotations

import pytest

from kraken.agent.tools.git import default_destination, token_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/acme/app.git", "https://TOK@github.com/acme/app.git"),
        ("https://someone@gitlab.example/acme/app", "https://TOK@gitlab.example/acme/app"),
        ("http://git.local/r.git", "http://TOK@git.local/r.git"),
        ("git@github.com:acme/app.git", "https://TOK@github.com/acme/app.git"),
        ("/srv/repo", None),
        ("file:///srv/repo", None),
        ("./repo", None),
    ],
)
def test_token_url(url: str, expected: str | None) -> None:
    assert token_url(url, "TOK") == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [("https://h/acme/app.git", "app"), ("/srv/repo/", "repo"), ("--upload-pack=x", "upload-pack=x"), ("-", "repo")],
)
def test_default_destination_never_starts_with_a_dash(url: str, expected: str) -> None:
    assert default_destination(url) == expected
