"""Container limits and labels, checked both by their effect inside and by the engine's own view."""

from __future__ import annotations

import os

import pytest

from kraken.agent.executors.base import Executor
from tests.executors.conftest import Lines, MakeExecutor, engine_inspect

pytestmark = pytest.mark.timeout(240)

containers = pytest.mark.parametrize(
    "name",
    [pytest.param("docker", marks=pytest.mark.docker), pytest.param("lxd", marks=pytest.mark.lxd)],
)


async def run(ex: Executor, cmd: str) -> tuple[int | None, list[str]]:
    lines = Lines()
    res = await ex.exec(["sh", "-c", cmd], on_line=lines, timeout=120)
    assert not res.timed_out, lines.lines
    return res.exit_code, lines.lines


# 400 MiB through a pipe into tail, which keeps it all (no newline): the last command's exit code.
MEMORY_HOG = "head -c 419430400 /dev/zero | tail >/dev/null"


@containers
async def test_memory_limit_kills_a_hog(name: str, make_executor: MakeExecutor) -> None:
    limited = await make_executor(name, limits={"memory": "64m"})
    code, lines = await run(limited, MEMORY_HOG)
    assert code not in (0, None), lines  # killed by the OOM killer (137)
    # the same command passes without the limit: the limit is what killed it
    free = await make_executor(name)
    assert (await run(free, MEMORY_HOG))[0] == 0


@containers
async def test_python_allocation_over_the_memory_limit(name: str, make_executor: MakeExecutor) -> None:
    ex = await make_executor(name, "python", limits={"memory": 64 << 20})
    code, _ = await run(ex, "python3 -c 'b = bytearray(48 << 20); print(len(b))'")
    assert code == 0
    code, lines = await run(ex, "python3 -c 'b = bytearray(256 << 20); print(len(b))'")
    assert code not in (0, None), lines


@containers
async def test_pids_limit(name: str, make_executor: MakeExecutor) -> None:
    spawn = "i=0; while [ $i -lt 40 ]; do sleep 60 >/dev/null 2>&1 & i=$((i+1)); done; echo spawned all"
    limited = await make_executor(name, limits={"pids": 16})
    code, lines = await run(limited, spawn)
    assert code != 0 and "spawned all" not in lines
    assert any("fork" in line.lower() for line in lines), lines
    free = await make_executor(name)
    assert await run(free, spawn) == (0, ["spawned all"])


def interfaces(lines: list[str]) -> set[str]:
    return {line.split(":")[0].strip() for line in lines[2:] if ":" in line}


@containers
async def test_network_none_leaves_only_loopback(name: str, make_executor: MakeExecutor) -> None:
    isolated = await make_executor(name, limits={"network": False})
    code, lines = await run(isolated, "cat /proc/net/dev")
    assert code == 0 and interfaces(lines) == {"lo"}, lines
    connected = await make_executor(name, limits={"network": True})
    code, lines = await run(connected, "cat /proc/net/dev")
    assert code == 0 and "eth0" in interfaces(lines), lines


@containers
async def test_limits_and_labels_reach_the_engine(name: str, make_executor: MakeExecutor, agent_name: str) -> None:
    ex = await make_executor(
        name,
        limits={"cpus": 0.5, "memory": "512m", "pids": 100},
        labels={"kraken.stage": "unit", "team": "infra"},
    )
    info = engine_inspect(ex)
    job = str(ex.env.job_id)
    if name == "docker":
        labels = info["Config"]["Labels"]
        assert labels["kraken.agent"] == agent_name and labels["kraken.job"] == job
        assert labels["kraken.stage"] == "unit" and labels["team"] == "infra"
        hc = info["HostConfig"]
        assert hc["NanoCpus"] == 500_000_000
        assert hc["Memory"] == 512 << 20 and hc["MemorySwap"] == 512 << 20
        assert hc["PidsLimit"] == 100
    else:
        config = info["config"]
        assert config["user.kraken.agent"] == agent_name and config["user.kraken.job"] == job
        assert config["user.kraken.stage"] == "unit" and config["user.team"] == "infra"
        assert config["limits.cpu.allowance"] == "50ms/100ms"
        assert config["limits.memory"] == str(512 << 20)
        assert config["limits.processes"] == "100"
        assert info["ephemeral"] is True
    # the CPU quota is in force: the container's cgroup (read on the host) has 50 ms per 100 ms
    quota = cpu_quota(ex)
    assert quota.split()[0] == "50000", quota


def cpu_quota(ex: Executor) -> str:
    """The container's CFS quota from the host's cgroup tree (v1 or v2 layout)."""
    from kraken.agent.executors.docker import DockerExecutor
    from kraken.agent.executors.lxd import LxdExecutor

    if isinstance(ex, DockerExecutor):
        cid = ex.container_id
        candidates = [
            f"/sys/fs/cgroup/cpu/docker/{cid}/cpu.cfs_quota_us",
            f"/sys/fs/cgroup/cpu,cpuacct/docker/{cid}/cpu.cfs_quota_us",
            f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.max",
            f"/sys/fs/cgroup/docker/{cid}/cpu.max",
        ]
    else:
        assert isinstance(ex, LxdExecutor)
        candidates = [
            f"/sys/fs/cgroup/cpu/lxc.payload.{ex.container_name}/cpu.cfs_quota_us",
            f"/sys/fs/cgroup/cpu,cpuacct/lxc.payload.{ex.container_name}/cpu.cfs_quota_us",
            f"/sys/fs/cgroup/lxc.payload.{ex.container_name}/cpu.max",
        ]
    for path in candidates:
        if os.path.exists(path):
            with open(path) as fh:
                return fh.read()
    raise AssertionError(f"no cgroup cpu quota file found among {candidates}")
