"""Fixtures: a real S3-compatible server (moto in server mode) and the e2e server/api."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import missing_service
from tests.e2e.conftest import api, server
from tests.support.procs import free_port

__all__ = ["api", "moto_s3", "server"]


@pytest.fixture
def moto_s3(tmp_path: Path) -> Iterator[dict[str, str]]:
    """``moto_server`` on a free port; yields the KRAKEN_* settings that point Kraken at it."""
    exe = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    if not Path(exe).exists():
        missing_service("moto_server (pip install 'moto[server]')", FileNotFoundError(exe))
    port = free_port()
    log = (tmp_path / "moto.log").open("w")
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                missing_service("moto_server", exc)
            time.sleep(0.05)
    try:
        yield {
            "KRAKEN_ARTIFACTS_STORE": "s3",
            "KRAKEN_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "KRAKEN_S3_BUCKET": "kraken-test",
            "KRAKEN_S3_ACCESS_KEY": "testing",
            "KRAKEN_S3_SECRET_KEY": "testing",
            "KRAKEN_S3_PREFIX": "ci",
        }
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
