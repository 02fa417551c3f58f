"""The commits of a regression's range, read from a real git repository into a server-side mirror."""

from __future__ import annotations

from pathlib import Path

import pytest

from kraken.culprits.history import RangeError, commit_range
from tests.support.gitrepo import commit, git, make_repo


async def test_range_oldest_first_with_authors_and_clear_errors(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shas = [make_repo(repo, {"a": "0"})] + [commit(repo, {"a": str(i)}, f"change {i}") for i in range(1, 5)]
    mirrors = tmp_path / "mirrors"
    got = await commit_range(mirrors, str(repo), shas[0], shas[4])
    assert [c["id"] for c in got] == shas[1:]
    assert got[0]["message"] == "change 1" and got[0]["author"] == "Test" and got[0]["email"] == "test@localhost"
    assert [c["id"] for c in await commit_range(mirrors, str(repo), shas[3], shas[4])] == [shas[4]]

    git(repo, "checkout", "-q", "-b", "side", shas[1])
    side = commit(repo, {"b": "1"}, "side")
    with pytest.raises(RangeError, match="is not an ancestor of the failing commit"):
        await commit_range(mirrors, str(repo), side, shas[4])
    with pytest.raises(RangeError, match=f"commit {'f' * 40} is not in"):
        await commit_range(mirrors, str(repo), "f" * 40, shas[4])
    with pytest.raises(RangeError, match=r"the repository cannot be read: fetching .* failed"):
        await commit_range(mirrors, str(tmp_path / "gone"), shas[0], shas[4])
