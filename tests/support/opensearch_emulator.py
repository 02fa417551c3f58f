"""``osmem-server``, an in-memory OpenSearch emulator from PyPI (not OpenSearch itself: a real
OpenSearch cannot be installed on the test machines), on a free port, for the OpenSearch log
store's tests. Stopping it (``pause``/``resume``: SIGSTOP/SIGCONT) makes requests hang as with a
stalled cluster; ``kill``/``start`` on the same port is a cluster that went away and came back
(empty: the emulator keeps nothing on disk)."""

from __future__ import annotations

import os
import signal

from osmem_server import OsmemServer

from tests.support.procs import free_port


class OpenSearchEmulator:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: OsmemServer | None = None

    def start(self) -> None:
        self.server = OsmemServer.start(addr=f"127.0.0.1:{self.port}", japanese=False)
        assert self.server.url.rstrip("/") == self.url, self.server.url

    def pause(self) -> None:
        assert self.server is not None
        os.kill(self.server.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.server is not None
        os.kill(self.server.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.server is not None:
            self.resume()
            self.server.process.kill()
            self.server.process.wait()
            self.server = None

    def stop(self) -> None:
        if self.server is not None:
            self.resume()
            self.server.close()
            self.server = None
