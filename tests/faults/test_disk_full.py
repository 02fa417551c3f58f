"""The server's data volume full (a small tmpfs as ``kraken serve``'s data dir), then space freed.

- A job writing its log when the volume fills up ends with ``error`` and "no space left on the
  server's data volume" (it used to stay ``running`` while its agent reconnected in a loop); the
  health check is ``degraded`` with that reason and ``kraken_data_volume_full`` is 1.
- Space freed: the health check is ``ok`` again by itself.
- An artifact too large for the space left is refused with that reason in the step and the job
  (it used to fail with "internal error: ReadError('')"); space freed, the same flow passes.

Mounting a tmpfs needs root (or CAP_SYS_ADMIN); where mount is not permitted the test is skipped,
saying so, except under CI=true, where it fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import Api
from tests.support.procs import agent_connected, free_port, kraken, start_agent

pytestmark = pytest.mark.e2e

REASON = "no space left on the server's data volume"
VOLUME = "64m"
ARTIFACT_MB = 12

LOOP = "i=0; while [ $i -lt 3000 ]; do i=$((i+1)); echo line-$i-" + "x" * 48 + "; sleep 0.02; done"
CHATTY = f"""
def stage(ctx):
    return {{"jobs": [{{"name": "chatty", "steps": [{{"tool": "shell", "cmd": "{LOOP}"}}],
        "environments": [{{"system": "any"}}]}}]}}
"""
UPLOAD = f"""
def stage(ctx):
    return {{"jobs": [{{"name": "upload", "steps": [
        {{"tool": "shell", "cmd": "head -c {ARTIFACT_MB << 20} /dev/urandom > big.bin"}},
        {{"tool": "artifacts", "source": "big.bin"}}],
        "environments": [{{"system": "any"}}]}}]}}
"""


@pytest.fixture
def volume(tmp_path: Path) -> Iterator[Path]:
    vol = tmp_path / "vol"
    vol.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={VOLUME},mode=0700", "tmpfs", str(vol)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        why = f"cannot mount a tmpfs as the data volume ({done.stderr.strip() or done.returncode}): needs root"
        if os.environ.get("CI") == "true":
            pytest.fail(why + "; CI must run the disk-full fault test")
        pytest.skip(why)
    try:
        yield vol
    finally:
        subprocess.run(["umount", "-l", str(vol)], check=False)


def fill(path: Path, leave: int = 0) -> None:
    """Write ``path`` until the volume has only ``leave`` bytes free (0: until it is full)."""
    chunk = b"\0" * (1 << 20)
    with contextlib.suppress(OSError), path.open("ab") as fh:
        while True:
            room = shutil.disk_usage(path.parent).free - leave
            if room <= 0:
                break
            fh.write(chunk[: min(len(chunk), room)])
            fh.flush()


async def health(api: Api) -> dict[str, Any]:
    r = await api.http.get(api.base + "/api/health")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def volume_full_metric(api: Api) -> float:
    r = await api.http.get(api.base + "/metrics")
    for line in r.text.splitlines():
        if line.startswith("kraken_data_volume_full "):
            return float(line.split()[1])
    raise AssertionError("no kraken_data_volume_full metric")


async def test_a_full_data_volume_is_told_ends_jobs_and_recovers(tmp_path: Path, volume: Path) -> None:
    port = free_port()
    server = kraken(
        ["serve", "--port", str(port), "--data-dir", str(volume / "data"), "--no-local-agent"], tmp_path, "server"
    )
    server.wait_line(lambda line: "listening on" in line, timeout=60)
    url = f"http://127.0.0.1:{port}"
    api = Api(url)
    agent = start_agent(tmp_path, url, "a1")  # its data dir is not on the volume
    filler = volume / "filler"
    try:
        await agent_connected(agent)
        await api.login()
        assert await health(api) == {"status": "ok", "role": "serve"}
        assert (volume / "data" / "space-reserve").exists()

        # 1. the volume fills up while a job streams its log
        _, chatty_branch = await api.project_with_branch("chatty")
        await api.stage(chatty_branch, "s", CHATTY)
        flow = await api.flow(chatty_branch)
        run_id = flow["runs"][0]["id"]

        async def some_lines() -> bool:
            [job] = await api.jobs(run_id)
            return bool(job["log_lines"] > 20)

        await api.wait_until(some_lines, 60, "the job's first lines")
        fill(filler)
        flow = await api.wait_flow(flow["id"], timeout=60)
        [job] = await api.jobs(run_id)
        assert (flow["result"], job["result"]) == ("error", "error"), job
        assert REASON in (job["reason"] or ""), job
        h = await health(api)
        assert h["status"] == "degraded" and REASON in h["reason"], h
        assert await volume_full_metric(api) == 1

        # 2. space comes back: healthy again by itself (the agent's heartbeats write)
        filler.unlink()

        async def healthy() -> bool:
            return (await health(api))["status"] == "ok"

        await api.wait_until(healthy, 30, "health ok after space came back")
        assert await volume_full_metric(api) == 0
        assert (volume / "data" / "space-reserve").exists(), "the reserve was not made anew"

        # 3. an artifact larger than the room left: refused with the reason, in the step and the job
        fill(filler, leave=(ARTIFACT_MB - 8) << 20)
        _, upload_branch = await api.project_with_branch("upload")
        await api.stage(upload_branch, "s", UPLOAD)
        flow = await api.wait_flow((await api.flow(upload_branch))["id"], timeout=90)
        [job] = await api.jobs(flow["runs"][0]["id"])
        assert job["result"] == "error", job
        assert REASON in (job["reason"] or ""), job
        step = job["steps"][1]
        assert step["result"] == "error" and REASON in (step.get("message") or ""), step
        assert "ReadError" not in (job["reason"] or "")
        assert not list((volume / "data" / "artifacts" / "tmp").iterdir()), "a partial upload was left"

        # 4. space freed: the same flow passes
        filler.unlink()
        await api.wait_until(healthy, 30, "health ok after space came back")
        flow = await api.wait_flow((await api.flow(upload_branch))["id"], timeout=90)
        assert flow["result"] == "passed", await api.jobs(flow["runs"][0]["id"])
    finally:
        with contextlib.suppress(FileNotFoundError):
            filler.unlink()
        agent.stop()
        await api.close()
        server.stop()


def test_health_is_anonymous_and_plain(tmp_path: Path) -> None:
    """Without a tmpfs: the health check of a server with room is ``ok`` without a reason."""
    port = free_port()
    server = kraken(
        ["serve", "--port", str(port), "--data-dir", str(tmp_path / "d"), "--no-local-agent"], tmp_path, "server"
    )
    try:
        server.wait_line(lambda line: "listening on" in line, timeout=60)
        r = httpx.get(f"http://127.0.0.1:{port}/api/health")
        assert r.json() == {"status": "ok", "role": "serve"}
    finally:
        server.stop()
