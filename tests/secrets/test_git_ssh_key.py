"""The git tool clones a private repository over ssh with an ssh-key secret (a real sshd)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import missing_service
from tests.support.api import Api
from tests.support.gitrepo import make_repo
from tests.support.procs import Server, free_port, start_agent, wait_agent_connected

pytestmark = pytest.mark.e2e

CODE = """
def stage(ctx):
    return {"jobs": [{"name": "clone", "steps": [
        {"tool": "git", "checkout": "URL", "branch": "main", "destination": "src", "ssh-key": "deploy"},
        {"tool": "shell", "cmd": "cat src/hello.txt"},
        {"tool": "shell", "cmd": "ls -a .kraken; test ! -e .kraken/ssh-key-0"},
        {"tool": "git", "checkout": "URL", "destination": "nokey", "when": "always"},
    ], "environments": [{"system": "any"}]}]}
"""


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[tuple[int, str]]:
    """An sshd on a free port that lets the current user in with a fresh key; yields (port, private key)."""
    exe = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(exe).exists():
        missing_service("sshd (Debian package openssh-server)", FileNotFoundError(exe))
    d = tmp_path / "sshd"
    d.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "user")], check=True)
    (d / "authorized_keys").write_text((d / "user.pub").read_text())
    os.chmod(d / "authorized_keys", 0o600)
    port = free_port()
    config = d / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\nPidFile {d / 'pid'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen([exe, "-D", "-e", "-f", str(config)], stderr=(d / "log").open("w"))
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                missing_service("sshd: " + (d / "log").read_text()[-500:], exc)
            time.sleep(0.05)
    try:
        yield port, (d / "user").read_text()
    finally:
        proc.terminate()
        proc.wait(10)


async def test_clone_private_repository_with_ssh_key_secret(
    tmp_path: Path, sshd: tuple[int, str], server: Server, api: Api
) -> None:
    port, key = sshd
    repo = tmp_path / "private"
    make_repo(repo, {"hello.txt": "hello over ssh\n"})
    user = pwd.getpwuid(os.getuid()).pw_name
    url = f"ssh://127.0.0.1:{port}{repo}"
    agent = start_agent(tmp_path, server.url, "a1")
    project_id, branch_id = await api.project_with_branch()
    secret = {"name": "deploy", "kind": "ssh-key", "user": user, "key": key}
    await api.post(f"/projects/{project_id}/secrets", secret, 201)
    await api.stage(branch_id, "s", CODE.replace("URL", url))
    wait_agent_connected(agent)
    flow = await api.wait_flow((await api.flow(branch_id))["id"])
    [job] = await api.jobs(flow["runs"][0]["id"])
    log = await api.log(job["id"])
    assert [s["result"] for s in job["steps"]] == ["passed", "passed", "passed", "failed"], log
    assert "hello over ssh" in log and "using ssh key from secret 'deploy'" in log
    assert "OPENSSH PRIVATE KEY" not in log and key.splitlines()[1] not in log
    agent.stop()
