"""The lock files pin every dependency pyproject.toml names (scripts/setup.sh installs from them)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[2]


def names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def pinned(lock: str) -> set[str]:
    text = (ROOT / lock).read_text()
    return {m.group(1).lower().replace("_", "-") for m in re.finditer(r"^([A-Za-z0-9_.-]+)==", text, re.M)}


def test_lock_files_pin_every_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime, dev = names(project["dependencies"]), names(project["optional-dependencies"]["dev"])
    hint = "the lock files are stale: run scripts/lock.sh"
    assert runtime - pinned("requirements.lock") == set(), hint
    assert (runtime | dev) - pinned("requirements-dev.lock") == set(), hint
    for lock in ("requirements.lock", "requirements-dev.lock"):  # pip install --require-hashes needs them
        text = (ROOT / lock).read_text()
        hashed = re.findall(r"^\S+==\S+( ;[^\n]*)? \\\n    --hash=sha256:", text, re.M)
        assert len(hashed) == len(re.findall(r"^\S+==", text, re.M)), lock
