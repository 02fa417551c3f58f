"""The executor contract, against the real thing: the host (direct), Docker and LXD."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import defusedxml.ElementTree as ET
import pytest

from kraken.agent.executors._sources import clone_source
from kraken.agent.executors.base import Executor, ExecutorError
from tests.executors.conftest import (
    ALL,
    CONTAINER_EXECUTORS,
    Lines,
    MakeExecutor,
    engine_has_container,
    engine_processes,
)

pytestmark = pytest.mark.timeout(240)

all_executors = pytest.mark.parametrize(
    "name",
    [
        pytest.param("direct"),
        pytest.param("docker", marks=pytest.mark.docker),
        pytest.param("lxd", marks=pytest.mark.lxd),
    ],
)
containers = pytest.mark.parametrize(
    "name",
    [pytest.param("docker", marks=pytest.mark.docker), pytest.param("lxd", marks=pytest.mark.lxd)],
)
assert {p for p in ALL} == {"direct", *CONTAINER_EXECUTORS}


async def output(ex: Executor, cmd: str, **kw: object) -> tuple[int | None, list[str]]:
    lines = Lines()
    res = await ex.exec(["sh", "-c", cmd], on_line=lines, **kw)  # type: ignore[arg-type]
    return res.exit_code, lines.lines


# ---------------------------------------------------------------- exec


@all_executors
async def test_exec_env_cwd_and_exit_codes(name: str, make_executor: MakeExecutor) -> None:
    ex = await make_executor(name)
    assert (await ex.exec(["mkdir", "-p", "sub/dir"])).exit_code == 0

    lines = Lines()
    res = await ex.exec(
        ["sh", "-c", 'echo "foo=$FOO"; echo "two=$TWO"; pwd; exit 7'],
        cwd="sub/dir",
        env={"FOO": "bar baz", "TWO": "2"},
        on_line=lines,
    )
    assert res.exit_code == 7 and not res.ok and not res.timed_out and not res.cancelled
    assert lines.lines == ["foo=bar baz", "two=2", f"{ex.workdir}/sub/dir"]

    # an absolute cwd, and the default cwd is the job's workdir
    assert await output(ex, "pwd", cwd="/") == (0, ["/"])
    assert await output(ex, "pwd") == (0, [ex.workdir])
    res = await ex.exec(["true"])
    assert res.exit_code == 0 and res.ok
    assert (await ex.exec(["false"])).exit_code == 1
    # a command that does not exist, and a cwd that does not exist
    code, _ = await output(ex, "exec kraken-no-such-command")
    assert code == 127
    res = await ex.exec(["kraken-no-such-command"])
    assert res.exit_code == 127
    res = await ex.exec(["pwd"], cwd="no/such/dir", on_line=(missing := Lines()))
    assert res.exit_code == 127
    assert any("no/such/dir" in line for line in missing.lines), missing.lines


@all_executors
async def test_branch_variables_reach_every_exec(name: str, make_executor: MakeExecutor) -> None:
    """The job's (branch's) variables are in every command's environment, under the exec's own."""
    ex = await make_executor(name, variables={"BRANCH_VAR": "from branch", "BOTH": "branch"})
    assert await output(ex, 'echo "$BRANCH_VAR|$BOTH"') == (0, ["from branch|branch"])
    assert await output(ex, 'echo "$BRANCH_VAR|$BOTH"', env={"BOTH": "step"}) == (0, ["from branch|step"])


@all_executors
async def test_output_is_merged_in_order_and_live(name: str, make_executor: MakeExecutor) -> None:
    ex = await make_executor(name)
    # stdout and stderr arrive as one stream, in the order written
    code, lines = await output(ex, "echo one; echo two >&2; echo three; printf 'no newline'")
    assert code == 0
    assert lines == ["one", "two", "three", "no newline"]

    # live: the first line reaches on_line while the command still runs (it blocks on a FIFO
    # until a second exec, started only after that line arrived, writes to it)
    assert (await ex.exec(["mkfifo", "gate"])).exit_code == 0
    live = Lines()
    running = asyncio.ensure_future(ex.exec(["sh", "-c", "echo ready; read x <gate; echo got $x"], on_line=live))
    await live.wait_for("ready")
    assert not running.done()
    assert live.lines == ["ready"]
    assert (await ex.exec(["sh", "-c", "echo open >gate"])).exit_code == 0
    res = await asyncio.wait_for(running, 30)
    assert res.exit_code == 0
    assert live.lines == ["ready", "got open"]


@pytest.mark.parametrize(
    "name",
    [
        "direct",
        pytest.param("docker", marks=pytest.mark.docker),
        pytest.param("lxd", marks=pytest.mark.lxd),
    ],
)
async def test_background_child_does_not_hold_the_step(name: str, make_executor: MakeExecutor) -> None:
    ex = await make_executor(name)
    lines = Lines()
    res = await ex.exec(["sh", "-c", "sleep 987651 & echo started"], timeout=8, on_line=lines)
    assert not res.timed_out, "a background child kept the step running"
    assert res.exit_code == 0 and lines.lines == ["started"]
    assert "987651" not in engine_processes(ex)


# ---------------------------------------------------------------- files


@all_executors
async def test_write_and_read_file(name: str, make_executor: MakeExecutor) -> None:
    ex = await make_executor(name)
    await ex.write_file("deep/er/script.sh", b"#!/bin/sh\necho from script $1\n", 0o755)
    code, lines = await output(ex, "./deep/er/script.sh arg")
    assert (code, lines) == (0, ["from script arg"])
    # absolute paths, overwrite
    await ex.write_file(f"{ex.workdir}/a.txt", b"first")
    await ex.write_file("a.txt", b"second\n")
    assert b"".join([c async for c in ex.read_file("a.txt")]) == b"second\n"
    assert b"".join([c async for c in ex.read_file(f"{ex.workdir}/deep/er/script.sh")]).startswith(b"#!/bin/sh")
    with pytest.raises(FileNotFoundError):
        async for _ in ex.read_file("no-such-file"):
            pass


@all_executors
async def test_big_files_are_streamed(name: str, make_executor: MakeExecutor) -> None:
    ex = await make_executor(name)
    # in: 6 MiB of random bytes
    data = os.urandom(6 << 20)
    await ex.write_file("in.bin", data)
    code, lines = await output(ex, "md5sum in.bin")
    assert code == 0 and lines[0].split()[0] == hashlib.md5(data).hexdigest()

    # out: 24 MiB made inside the environment, read in chunks
    code, lines = await output(ex, "head -c 25165824 /dev/urandom >out.bin && md5sum out.bin")
    assert code == 0
    digest = hashlib.md5()
    sizes = []
    async for chunk in ex.read_file("out.bin"):
        digest.update(chunk)
        sizes.append(len(chunk))
    assert sum(sizes) == 24 << 20
    assert digest.hexdigest() == lines[0].split()[0]
    assert len(sizes) > 4 and max(sizes) <= 4 << 20, "read_file must stream in chunks"


# ---------------------------------------------------------------- git


def make_repo(path: Path) -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=path, check=True, capture_output=True, text=True).stdout.strip()

    path.mkdir()
    git("init", "-q", "-b", "main")
    git("config", "user.email", "t@example.invalid")
    git("config", "user.name", "Test")
    (path / "README").write_text("hello from the host repo\n")
    git("add", "README")
    git("commit", "-q", "-m", "first")
    (path / "two.txt").write_text("2\n")
    git("add", "two.txt")
    git("commit", "-q", "-m", "second")
    return git("rev-parse", "HEAD")


@pytest.mark.parametrize("as_url", [False, True], ids=["path", "file-url"])
@all_executors
async def test_git_clone_of_a_local_repository(
    name: str, as_url: bool, make_executor: MakeExecutor, tmp_path: Path
) -> None:
    head = make_repo(tmp_path / "hostrepo")
    url = f"file://{tmp_path}/hostrepo" if as_url else str(tmp_path / "hostrepo")
    ex = await make_executor(name, "python")  # has git
    source = await clone_source(ex, url)
    if name == "direct":
        assert source == url  # the host's path works as is
    else:
        assert source.startswith(ex.workdir + "/.kraken/sources/")
    # what the git tool runs
    res = await ex.exec(["git", "clone", "--progress", source, "checkout"], timeout=120, on_line=(log := Lines()))
    assert res.exit_code == 0, log.lines
    code, lines = await output(ex, "git rev-parse HEAD && cat README", cwd="checkout")
    assert code == 0, lines
    assert lines == [head, "hello from the host repo"]
    # remote URLs are left alone
    assert await clone_source(ex, "https://example.invalid/x.git") == "https://example.invalid/x.git"


# ---------------------------------------------------------------- pytest inside


@all_executors
async def test_pytest_junit_xml_comes_out(name: str, make_executor: MakeExecutor) -> None:
    ex = await make_executor(name, "python")
    await ex.write_file(
        "proj/test_sample.py",
        b"def test_ok():\n    assert 1 + 1 == 2\n\ndef test_bad():\n    assert 1 + 1 == 3\n",
    )
    py = "python3" if name != "direct" else sys.executable  # the host: this venv has pytest
    lines = Lines()
    res = await ex.exec(
        [py, "-m", "pytest", "-p", "no:cacheprovider", "--junitxml=out/junit.xml", "-q"],
        cwd="proj",
        timeout=120,
        on_line=lines,
    )
    assert res.exit_code == 1, lines.lines  # one test failed
    assert any("1 failed, 1 passed" in line for line in lines.lines), lines.lines
    xml = b"".join([c async for c in ex.read_file("proj/out/junit.xml")])
    root = ET.fromstring(xml)
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    cases = {case.get("name"): case.find("failure") is not None for case in suite.iter("testcase")}
    assert cases == {"test_ok": False, "test_bad": True}


# ---------------------------------------------------------------- timeout, cancel, stop


@all_executors
async def test_step_timeout_kills_the_process_tree(name: str, make_executor: MakeExecutor) -> None:
    ex = await make_executor(name)
    lines = Lines()
    start = time.monotonic()
    res = await ex.exec(
        ["sh", "-c", "echo start; (sleep 987652; echo never) & sleep 987652; echo never"],
        timeout=1.5,
        on_line=lines,
    )
    elapsed = time.monotonic() - start
    assert res.timed_out and not res.ok and not res.cancelled
    assert 1.4 < elapsed < 15
    assert lines.lines == ["start"]
    assert "987652" not in engine_processes(ex)
    # the environment still works after a timeout
    assert await output(ex, "echo alive") == (0, ["alive"])


@all_executors
async def test_cancel_kills_what_runs_and_stop_removes(name: str, make_executor: MakeExecutor) -> None:
    ex = await make_executor(name)
    lines = Lines()
    running = asyncio.ensure_future(ex.exec(["sh", "-c", "sleep 987653 & echo started; sleep 987653"], on_line=lines))
    await lines.wait_for("started")
    assert "987653" in engine_processes(ex)
    await ex.cancel()
    res = await asyncio.wait_for(running, 20)
    assert res.cancelled and not res.ok
    assert "987653" not in engine_processes(ex)
    # after a cancel, nothing more runs
    assert (await ex.exec(["echo", "x"])).cancelled

    if name in CONTAINER_EXECUTORS:
        assert engine_has_container(ex)
    await ex.stop()
    await ex.stop()  # safe twice
    if name in CONTAINER_EXECUTORS:
        assert not engine_has_container(ex)
    else:
        assert not os.path.isdir(ex.workdir)  # noqa: ASYNC240


# ---------------------------------------------------------------- engine-level


@containers
async def test_probe_reports_the_engine(name: str) -> None:
    from tests.executors.conftest import engine_version, require_engine

    require_engine(name)
    version = engine_version(name)
    assert version and version[0].isdigit()


@containers
async def test_remove_orphans(name: str, make_executor: MakeExecutor, agent_name: str, tmp_path: Path) -> None:
    from kraken.agent.executors import executor_class

    agent = f"{agent_name}-orphans"
    left = [await make_executor(name, agent=agent) for _ in range(2)]
    other = await make_executor(name)  # another agent's: must stay
    # the same name, another data dir (another server's agent, another test worker): must stay
    namesake = await make_executor(name, agent=agent, data_dir=str(tmp_path / "namesake"))
    home = left[0].env.data_dir
    everything = [*left, other, namesake]
    assert all(engine_has_container(ex) for ex in everything)
    assert await executor_class(name).remove_orphans(agent, home) == 2
    assert not any(engine_has_container(ex) for ex in left)
    assert engine_has_container(other) and engine_has_container(namesake)
    assert await executor_class(name).remove_orphans(agent, home) == 0
    assert await executor_class(name).remove_orphans(agent) == 1  # no home: every agent of that name
    assert not engine_has_container(namesake)
    for ex in left:
        await ex.stop()  # still safe after the engine removed it


@containers
async def test_missing_image_is_a_clear_error(name: str, make_executor: MakeExecutor) -> None:
    image = "kraken-test/no-such-image:1" if name == "docker" else "kraken-test/no-such-image"
    ex = await make_executor(name, image, start=False)
    with pytest.raises(ExecutorError) as err:
        await ex.start()
    assert image in str(err.value)
    assert "not found" in str(err.value)
    await ex.stop()


@all_executors
async def test_stop_while_a_command_runs(name: str, make_executor: MakeExecutor) -> None:
    ex = await make_executor(name)
    lines = Lines()
    running = asyncio.ensure_future(ex.exec(["sh", "-c", "echo started; sleep 987654"], on_line=lines))
    await lines.wait_for("started")
    await ex.stop()
    res = await asyncio.wait_for(running, 30)
    assert res.cancelled and not res.ok
    if name in CONTAINER_EXECUTORS:
        assert not engine_has_container(ex)
    else:
        assert "987654" not in engine_processes(ex)
