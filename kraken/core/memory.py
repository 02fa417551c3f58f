"""Give back the memory that start-up used and no longer needs (issue #13: idle footprint).

Start-up (imports, migrations in their child, the OpenAPI routes, the agent's engine probe)
leaves garbage cycles and freed heap pages behind. ``release_startup_memory`` collects the cycles,
moves what survives into the collector's permanent generation (``gc.freeze``: never scanned
again, so later collections do not touch those pages), and asks glibc to hand the free pages of
its heap back to the kernel (``malloc_trim``). Elsewhere than glibc it only collects.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import logging
import platform

log = logging.getLogger(__name__)


@functools.cache
def _libc_malloc_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_startup_memory() -> None:
    """Collect, freeze the survivors, and trim glibc's heap (where there is one)."""
    gc.collect()
    gc.freeze()
    trim = _libc_malloc_trim()
    if trim is not None:
        trim(0)
