"""Process hardening shared by the roles that hold Kraken's credentials."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)


def not_dumpable() -> None:
    """Make this process's /proc files (environ, memory, fds) unreadable to other processes of
    the same user, jobs included (Linux: prctl PR_SET_DUMPABLE 0; also no core dumps)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE = 4
            log.warning("prctl(PR_SET_DUMPABLE, 0) failed: errno %d", ctypes.get_errno())
    except OSError as exc:
        log.warning("cannot make the process non-dumpable: %s", exc)
