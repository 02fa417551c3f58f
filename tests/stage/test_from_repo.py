"""Reading stage code from real git repositories (``kraken.stage.from_repo``), without a server:
the file at the branch's head and its commit, a new commit read next time, a missing branch or
file, values that could be read as git options, and an access token kept out of errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from kraken.core.config import Settings
from kraken.stage import from_repo
from kraken.stage.from_repo import RepoError, RepoSource, check_source, read_stage_code
from tests.support.gitrepo import commit, git, make_repo

CODE_1 = "def stage(ctx):\n    return {'jobs': []}\n"
CODE_2 = "def stage(ctx):\n    return {'parent': 'root', 'jobs': []}\n"


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    from_repo.configure(Settings(data_dir=data))
    return data


async def test_reads_the_file_at_the_branch_head_and_follows_new_commits(tmp_path: Path, data_dir: Path) -> None:
    repo = tmp_path / "repo"
    first = make_repo(repo, {"ci/stage.star": CODE_1})
    source = RepoSource(url=f"file://{repo}", branch="main", file="ci/stage.star")
    assert await read_stage_code(source) == (CODE_1, first)
    second = commit(repo, {"ci/stage.star": CODE_2}, "second")
    assert second != first
    assert await read_stage_code(source) == (CODE_2, second)
    assert list((data_dir / "stage-repos").iterdir()), "the fetch goes into a cache under the data dir"
    shallow = (next(p for p in (data_dir / "stage-repos").iterdir() if p.is_dir()) / "shallow").read_text()
    assert second in shallow, "the fetch is shallow"


async def test_a_plain_path_and_another_branch(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo, {"s.star": CODE_1})
    git(repo, "checkout", "-q", "-b", "release/1.x")
    other = commit(repo, {"s.star": CODE_2}, "on release")
    assert await read_stage_code(RepoSource(url=str(repo), branch="release/1.x", file="s.star")) == (CODE_2, other)


async def test_missing_branch_file_and_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo, {"s.star": CODE_1})
    with pytest.raises(RepoError, match=r"no branch 'nope' in file://"):
        await read_stage_code(RepoSource(url=f"file://{repo}", branch="nope", file="s.star"))
    with pytest.raises(RepoError, match=r"no file other\.star in commit [0-9a-f]{12} of branch 'main'"):
        await read_stage_code(RepoSource(url=f"file://{repo}", branch="main", file="other.star"))
    with pytest.raises(RepoError, match=r"cannot fetch branch 'main' of file:///no/such/repo"):
        await read_stage_code(RepoSource(url="file:///no/such/repo", branch="main", file="s.star"))


@pytest.mark.parametrize(
    ("url", "branch", "file", "field"),
    [
        ("--upload-pack=touch /tmp/x", "main", "s.star", "repo_url"),
        ("-oProxyCommand=touch /tmp/x", "main", "s.star", "repo_url"),
        ("file:///r", "--upload-pack=touch", "s.star", "repo_branch"),
        ("file:///r", "-b", "s.star", "repo_branch"),
        ("file:///r", "main x", "s.star", "repo_branch"),
        ("file:///r", "a..b", "s.star", "repo_branch"),
        ("file:///r", "main", "../etc/passwd", "schema_file"),
        ("file:///r", "main", "/etc/passwd", "schema_file"),
        ("", "main", "s.star", "repo_url"),
    ],
)
def test_values_that_could_be_options_are_refused(url: str, branch: str, file: str, field: str) -> None:
    problem = check_source(url, branch, file)
    assert problem is not None and problem[0] == field


async def test_option_injection_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    repo = tmp_path / "repo"
    make_repo(repo, {"s.star": CODE_1})
    for source in (
        RepoSource(url=f"--upload-pack=touch {marker}", branch="main", file="s.star"),
        RepoSource(url=f"file://{repo}", branch=f"--upload-pack=touch {marker}", file="s.star"),
        RepoSource(url=f"ext::sh -c touch% {marker}", branch="main", file="s.star"),
    ):
        with pytest.raises(RepoError):
            await read_stage_code(source)
    assert not marker.exists()


async def test_an_access_token_needs_an_https_url_and_stays_out_of_errors() -> None:
    with pytest.raises(RepoError, match="access token needs an http"):
        await read_stage_code(RepoSource(url="file:///r", branch="main", file="s.star", token="tok"))
    token = "s3cr3t-token-value"
    with pytest.raises(RepoError) as err:
        await read_stage_code(
            RepoSource(url="http://127.0.0.1:9/r.git", branch="main", file="s.star", token=token), timeout=20
        )
    assert token not in str(err.value)
    assert "cannot fetch branch 'main' of http://127.0.0.1:9/r.git" in str(err.value)


async def test_the_server_data_dir_is_no_source(tmp_path: Path, data_dir: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo, {"s.star": CODE_1})
    await read_stage_code(RepoSource(url=f"file://{repo}", branch="main", file="s.star"))
    cached = next(p for p in (data_dir / "stage-repos").iterdir() if p.is_dir())
    for url in (f"file://{cached}", str(cached), f"{data_dir}/../data/stage-repos/{cached.name}"):
        with pytest.raises(RepoError, match="inside the server's data dir"):
            await read_stage_code(RepoSource(url=url, branch="main", file="s.star"))


async def test_concurrent_reads_of_one_repository(tmp_path: Path) -> None:
    """Reads at once (as the API and the worker may do) all succeed: one fetch at a time per cache."""
    import asyncio

    repo = tmp_path / "repo"
    head = make_repo(repo, {"s.star": CODE_1})
    sources = [RepoSource(url=f"file://{repo}", branch="main", file="s.star") for _ in range(4)]
    results = await asyncio.gather(*(read_stage_code(s) for s in sources))
    assert results == [(CODE_1, head)] * 4
