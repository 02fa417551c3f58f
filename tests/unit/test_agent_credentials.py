"""The agent's credential file and the job transfer tokens, without a server."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest

from kraken.agent import credentials
from kraken.artifacts import tokens
from kraken.core.security import create_access_token, read_access_token
from kraken.models.base import utcnow


def test_credential_file_is_private_and_never_replaced(tmp_path: Path) -> None:
    path = credentials.credential_path(tmp_path)
    assert credentials.load(path) is None
    credentials.save(path, "first")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert credentials.load(path) == "first"
    with pytest.raises(FileExistsError):
        credentials.save(path, "second")
    assert credentials.load(path) == "first"
    path.write_text("\n")
    with pytest.raises(PermissionError, match="empty"):
        credentials.load(path)


def test_transfer_token_names_its_job_and_agent_and_nothing_else_passes() -> None:
    token = tokens.issue("key", 7, 3, 60)
    assert tokens.read(token, "key") == tokens.JobTransfer(job_id=7, agent_id=3)
    assert tokens.read(token, "other-key") is None
    assert tokens.read(token + "x", "key") is None
    an_hour_ago = utcnow() - timedelta(hours=1)
    assert tokens.read(tokens.issue("key", 7, 3, 60, now=an_hour_ago), "key") is None  # expired
    assert tokens.read(tokens.issue("key", 7, 3, 1e300), "key") is not None  # a huge timeout is capped
    # login tokens and transfer tokens are never mistaken for each other
    login = create_access_token("admin", "key", 5)
    assert tokens.read(login, "key") is None
    assert read_access_token(token, "key") is None


def test_assignment_gets_the_token_of_its_agent() -> None:
    job = tokens.with_token({"id": 5, "timeout": 30.0, "steps": []}, "key", 9)
    assert job["steps"] == [] and tokens.read(job["transfer_token"], "key") == tokens.JobTransfer(5, 9)
