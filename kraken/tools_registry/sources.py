"""Where a custom tool is registered from: a folder on the server, a git repository, an archive.

A git repository is cloned (``--depth 1`` at the given branch or tag) into a temporary folder
with ``git clone ... -- URL DIR``: the URL and ref cannot be taken as options (a leading ``-``
is refused too), no credential prompt waits, ``ext::`` transports are off and the clone has a
time limit.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path

from kraken.tools_registry.package import Package, PackageError, pack_dir, unpack

GIT_TIMEOUT = 120.0
REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./+-]{0,199}$")


async def from_directory(path: str) -> Package:
    root = Path(path)
    if not root.is_absolute():
        raise PackageError(f"the folder {path!r} must be an absolute path on the server")

    def work() -> Package:
        if not root.is_dir():
            raise PackageError(f"the folder {path!r} does not exist on the server")
        return pack_dir(root)

    return await asyncio.to_thread(work)


async def _git(*args: str, cwd: str | None = None) -> tuple[int, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": tempfile.gettempdir(),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
    }
    proc = await asyncio.create_subprocess_exec(
        "git",
        "-c",
        "protocol.ext.allow=never",
        "-c",
        "core.hooksPath=/dev/null",
        *args,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), GIT_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return -1, f"git took longer than {GIT_TIMEOUT:g}s"
    return proc.returncode or 0, out.decode(errors="replace")[-1000:]


async def from_git(url: str, ref: str | None) -> Package:
    if not url or url.startswith("-") or any(c in url for c in "\x00\n\r"):
        raise PackageError(f"the git URL {url!r} is not a repository URL")
    if url.lower().startswith("ext::"):
        raise PackageError("the git URL may not use the ext:: transport")
    if ref is not None and not REF_RE.match(ref):
        raise PackageError(f"the git ref {ref!r} is not a branch or tag name")
    with tempfile.TemporaryDirectory(prefix="kraken-tool-") as tmp:
        dest = str(Path(tmp) / "tool")
        args = ["clone", "--quiet", "--depth", "1", "--no-recurse-submodules"]
        if ref:
            args += ["--branch", ref]
        code, out = await _git(*args, "--", url, dest)
        if code != 0:
            raise PackageError(f"git clone of {url!r}{f' at {ref!r}' if ref else ''} failed: {out.strip()}")
        return await asyncio.to_thread(pack_dir, Path(dest))


async def from_archive(data: bytes) -> Package:
    def work() -> Package:
        with tempfile.TemporaryDirectory(prefix="kraken-tool-") as tmp:
            root = Path(tmp) / "tool"
            root.mkdir()
            unpack(data, root)
            return pack_dir(root)

    return await asyncio.to_thread(work)
