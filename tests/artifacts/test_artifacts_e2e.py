"""Artifacts through real server and agent processes: a large file round trip between stages,
the API (list, checksum, range requests), refused paths and sizes, S3 as the store."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from tests.support.api import Api
from tests.support.procs import SECRET_KEY, Server, start_agent, transfer_token, wait_agent_connected

pytestmark = pytest.mark.e2e

BIG_MB = 256

BUILD = """
def stage(ctx):
    return {
        "jobs": [{
            "name": "build",
            "steps": [
                {"tool": "shell", "script": "\\n".join([
                    "mkdir -p out/sub && head -c BIG_MBM /dev/urandom > out/big.bin",
                    "echo one > out/a.txt && echo two > out/sub/b.txt && echo x > other.log",
                    "sha256sum out/big.bin",
                ])},
                {"tool": "artifacts", "source": "out/big.bin", "cwd": "."},
                {"tool": "artifacts", "source": ["**/*.txt"], "cwd": "out", "destination": "texts", "public": True},
            ],
            "environments": [{"system": "any"}],
        }],
    }
""".replace("BIG_MB", str(BIG_MB))

USE = """
def stage(ctx):
    return {
        "parent": "build",
        "jobs": [{
            "name": "use",
            "steps": [
                {"tool": "artifacts", "action": "download", "source": "out/*.bin", "destination": "got"},
                {"tool": "artifacts", "action": "download", "source": "texts/**"},
                {"tool": "shell", "cmd": "sha256sum got/out/big.bin && cat texts/a.txt texts/sub/b.txt"},
            ],
            "environments": [{"system": "any"}],
        }],
    }
"""


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


async def test_large_artifact_round_trip_between_stages(tmp_path: Path, server: Server, api: Api) -> None:
    agent = start_agent(tmp_path, server.url, "a1")
    _, branch_id = await api.project_with_branch()
    await api.stage(branch_id, "build", BUILD)
    await api.stage(branch_id, "use", USE)
    wait_agent_connected(agent)
    server_before = peak_rss_mb(server.proc.proc.pid)
    agent_before = peak_rss_mb(agent.proc.pid)
    flow = await api.wait_flow((await api.flow(branch_id))["id"], timeout=240)
    assert flow["result"] == "passed", flow
    build_run, use_run = flow["runs"]
    [build_job] = await api.jobs(build_run["id"])
    [use_job] = await api.jobs(use_run["id"])
    build_log, use_log = await api.log(build_job["id"]), await api.log(use_job["id"])
    digest = next(line.split()[0] for line in build_log.splitlines() if line.endswith("out/big.bin"))
    assert f"{digest}  got/out/big.bin" in use_log, use_log
    assert "one\ntwo" in use_log

    arts = await api.get(f"/flows/{flow['id']}/artifacts")
    by_path = {a["path"]: a for a in arts}
    assert sorted(by_path) == ["out/big.bin", "texts/a.txt", "texts/sub/b.txt"]
    big = by_path["out/big.bin"]
    assert big["size"] == BIG_MB << 20 and big["sha256"] == digest and big["public"] is False
    assert by_path["texts/a.txt"]["public"] is True and by_path["texts/a.txt"]["size"] == 4
    assert by_path["texts/a.txt"]["sha256"] == hashlib.sha256(b"one\n").hexdigest()
    assert [a["path"] for a in await api.get(f"/flows/{flow['id']}/artifacts", params={"public": True})] == [
        "texts/a.txt",
        "texts/sub/b.txt",
    ]
    assert len(await api.get(f"/runs/{build_run['id']}/artifacts")) == 3
    assert await api.get(f"/runs/{use_run['id']}/artifacts") == []
    assert build_job["steps"][1]["info"]["artifacts"][0]["sha256"] == digest

    # Download through the API: whole (streamed, checksum) and ranges.
    h = hashlib.sha256()
    async with api.http.stream("GET", f"/artifacts/{big['id']}/content") as resp:
        assert resp.status_code == 200 and resp.headers["content-length"] == str(big["size"])
        assert resp.headers["accept-ranges"] == "bytes" and resp.headers["x-checksum-sha256"] == digest
        async for chunk in resp.aiter_bytes():
            h.update(chunk)
    assert h.hexdigest() == digest
    small = by_path["texts/sub/b.txt"]
    r = await api.http.get(f"/artifacts/{small['id']}/content", headers={"Range": "bytes=1-2"})
    assert r.status_code == 206 and r.content == b"wo" and r.headers["content-range"] == "bytes 1-2/4"
    r = await api.http.get(f"/artifacts/{small['id']}/content", headers={"Range": "bytes=-2"})
    assert r.status_code == 206 and r.content == b"o\n"
    r = await api.http.get(f"/artifacts/{small['id']}/content", headers={"Range": "bytes=9-"})
    assert r.status_code == 416 and r.headers["content-range"] == "bytes */4"
    assert (await api.http.get("/artifacts/999999/content")).status_code == 404

    # Neither side held the file in memory.
    grown_server = peak_rss_mb(server.proc.proc.pid) - server_before
    grown_agent = peak_rss_mb(agent.proc.pid) - agent_before
    assert grown_server < BIG_MB / 2 and grown_agent < BIG_MB / 2, (grown_server, grown_agent)
    agent.stop()


ESCAPES = """
def stage(ctx):
    bad = [
        {"tool": "artifacts", "source": "../outside.txt"},
        {"tool": "artifacts", "source": "/etc/passwd"},
        {"tool": "artifacts", "source": "x.txt", "cwd": "../.."},
        {"tool": "artifacts", "source": "x.txt", "cwd": "escape"},
        {"tool": "artifacts", "action": "download", "destination": "../../tmp"},
        {"tool": "artifacts", "source": "big.bin"},
        {"tool": "artifacts", "source": "nothing-*.txt"},
    ]
    for step in bad:
        step["when"] = "always"
    return {
        "jobs": [{
            "name": "escapes",
            "steps": [{"tool": "shell", "cmd": "echo x > x.txt && ln -s / escape && head -c 5000 /dev/zero > big.bin"}]
                     + bad + [{"tool": "artifacts", "source": "x.txt", "when": "always"}],
            "environments": [{"system": "any"}],
        }],
    }
"""


async def test_traversal_and_size_limit_refused(tmp_path: Path, database_url: str) -> None:
    server = Server(tmp_path, database_url=database_url, KRAKEN_ARTIFACTS_MAX_SIZE="4000", KRAKEN_SECRET_KEY=SECRET_KEY)
    api = Api(server.url)
    agent = start_agent(tmp_path, server.url, "a1")
    try:
        await api.login()
        _, branch_id = await api.project_with_branch()
        await api.stage(branch_id, "s", ESCAPES)
        wait_agent_connected(agent)
        flow = await api.wait_flow((await api.flow(branch_id))["id"])
        [job] = await api.jobs(flow["runs"][0]["id"])
        steps = job["steps"]
        assert [s["result"] for s in steps] == ["passed"] + ["error"] * 7 + ["passed"], steps
        messages = [s["message"] for s in steps[1:8]]
        assert "leaves the job's working directory" in messages[0]
        assert "outside the working directory" in messages[1]
        assert "leaves the job's working directory" in messages[2]
        assert "leads outside the job's working directory (through a symlink)" in messages[3]
        assert "leaves the job's working directory" in messages[4]
        assert "'big.bin' has 5000 bytes, more than the artifact size limit of 4000 bytes" in messages[5]
        assert "no file matches 'nothing-*.txt'" in messages[6]
        assert [a["path"] for a in await api.get(f"/flows/{flow['id']}/artifacts")] == ["x.txt"]

        # The server refuses by itself too, whatever the client claims (with the job's own token).
        auth = {"Authorization": f"Bearer {transfer_token(job['id'], job['agent_id'])}"}
        async with httpx.AsyncClient(base_url=server.url + "/api/agent/jobs", timeout=30) as http:
            r = await http.put(f"/{job['id']}/artifacts", params={"path": "../x"}, content=b"x", headers=auth)
            assert r.status_code == 400 and "'..' is not allowed" in r.json()["detail"]
            r = await http.put(f"/{job['id']}/artifacts", params={"path": "/x"}, content=b"x", headers=auth)
            assert r.status_code == 400 and "absolute" in r.json()["detail"]
            r = await http.put(f"/{job['id']}/artifacts", params={"path": "y"}, content=b"x", headers={})
            assert r.status_code == 401
            r = await http.put(f"/{job['id']}/artifacts", params={"path": "y"}, content=b"x" * 5000, headers=auth)
            assert r.status_code == 413 and "limit of 4000 bytes" in r.json()["detail"]

            async def chunks() -> object:  # no Content-Length: counted while streaming
                for _ in range(5):
                    yield b"y" * 1000

            url = f"/{job['id']}/artifacts"
            r = await http.put(url, params={"path": "y"}, content=chunks(), headers=auth)  # type: ignore[arg-type]
            # The job is completed, so the server refuses before reading; a running job gets 413.
            assert r.status_code in (409, 413)
    finally:
        agent.stop()
        await api.close()
        server.stop()


SMALL = """
def stage(ctx):
    return {"jobs": [{"name": "j", "steps": [
        {"tool": "shell", "cmd": "head -c 3000000 /dev/urandom > f.bin && sha256sum f.bin"},
        {"tool": "artifacts", "source": "f.bin"},
        {"tool": "artifacts", "action": "download", "source": "f.bin", "destination": "back"},
        {"tool": "shell", "cmd": "cmp f.bin back/f.bin && echo same"},
    ], "environments": [{"system": "any"}]}]}
"""


async def test_s3_store(tmp_path: Path, database_url: str, moto_s3: dict[str, str]) -> None:
    server = Server(tmp_path, database_url=database_url, **moto_s3)  # type: ignore[arg-type]
    api = Api(server.url)
    agent = start_agent(tmp_path, server.url, "a1")
    try:
        await api.login()
        _, branch_id = await api.project_with_branch()
        await api.stage(branch_id, "s", SMALL)
        wait_agent_connected(agent)
        flow = await api.wait_flow((await api.flow(branch_id))["id"])
        assert flow["result"] == "passed"
        [job] = await api.jobs(flow["runs"][0]["id"])
        assert "same" in await api.log(job["id"])
        [art] = await api.get(f"/flows/{flow['id']}/artifacts")
        r = await api.http.get(f"/artifacts/{art['id']}/content")
        assert hashlib.sha256(r.content).hexdigest() == art["sha256"] and len(r.content) == 3000000

        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=moto_s3["KRAKEN_S3_ENDPOINT_URL"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="kraken-test").get("Contents", [])]
        assert keys == [f"ci/blobs/{art['sha256'][:2]}/{art['sha256']}"]  # content-addressed, no leftovers
    finally:
        agent.stop()
        await api.close()
        server.stop()
