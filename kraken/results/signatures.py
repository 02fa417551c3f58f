"""Failure signatures: what makes two failures "the same cause".

A failed result's message (the report's message and traceback, as the parsers keep it) is
reduced to three parts, each normalised:

- the exception type (``ConnectionError``, ``AssertionError``...), from pytest's last location
  line (``lib.py:5: ConnectionError``), a Python traceback's last line or the message's start;
- the innermost ``INNERMOST_FRAMES`` frames, as file base names (and function names where the
  traceback gives them), without line numbers;
- the error line: pytest's first ``E`` line, a Python traceback's last line, else the first
  non-empty line of the message.

Normalising replaces uuids, hex addresses (``0x7f3a...``), temporary paths (``/tmp/...``,
``/var/folders/...``, pytest's ``pytest-of-*``), long hex ids and every number by placeholders,
and collapses white space.  So failures that differ only by ports, counts, object addresses,
temp dirs or ids share a signature, and different exceptions or different innermost frames do
not.  The stored key is a 16-hex-digit hash of the signature (``failure_key``); the readable
signature is made again from a group's representative message when it is shown.
"""

from __future__ import annotations

import functools
import hashlib
import re

INNERMOST_FRAMES = 2
MAX_SIGNATURE = 1000  # characters of the error line kept
TAIL = 1500  # characters at the end of a message searched for frames

_UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
_ADDR = re.compile(r"\b0[xX][0-9a-fA-F]+\b")
_TMP = re.compile(
    r"""(?:[A-Za-z]:)?(?:[/\\](?:private[/\\])?(?:tmp|var[/\\]tmp|var[/\\]folders|dev[/\\]shm)"""
    r"""|[/\\]AppData[/\\]Local[/\\]Temp|pytest-of-[^\s/\\]+)(?:[/\\][^\s'"<>(),;\]]*)?"""
)
_HEXID = re.compile(r"\b(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_SPACE = re.compile(r"\s+")

# pytest: "path/to/file.py:12: ExcType" (last entry) or "path/to/file.py:12: " / ": in func"
_PYTEST_LOC = re.compile(r"^([^\s:]+):\d+:(?: (?:in )?(\S*))?[ \t]*$", re.MULTILINE)
# Python: '  File "path/to/file.py", line 12, in func'
_PY_FRAME = re.compile(r'^[ \t]*File "([^"\n]+)", line \d+, in (\S+)', re.MULTILINE)
_PYTEST_E = re.compile(r"^E[ \t]+(\S.*)$", re.MULTILINE)
_EXC_START = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Failure|Warning|Fault))\b")
_EXC_NAME = re.compile(r"^[A-Za-z_][\w.]*$")


def normalise(text: str) -> str:
    """``text`` with uuids, addresses, temp paths, hex ids and numbers replaced, spaces collapsed."""
    text = _UUID.sub("<uuid>", text)
    text = _ADDR.sub("<addr>", text)
    text = _TMP.sub("<tmp>", text)
    text = _HEXID.sub("<id>", text)
    text = _NUMBER.sub("<n>", text)
    return _SPACE.sub(" ", text).strip()


@functools.lru_cache(maxsize=4096)
def _base(path: str) -> str:
    return normalise(re.split(r"[/\\]", path)[-1])


def signature(message: str | None) -> str:
    """The normalised signature of a failure's message and traceback (``""`` for no message)."""
    if not message or not message.strip():
        return ""
    exc = ""
    frames: list[str] = []
    line = next((ln for ln in message.splitlines() if ln.strip()), "")
    # the innermost frames and the exception are at the end: only the last lines are searched
    tail = message if len(message) <= TAIL else message[-TAIL:].split("\n", 1)[-1]
    py = _PY_FRAME.findall(tail) if 'File "' in tail else []
    if py:
        frames = [f"{_base(path)}:{normalise(func)}" for path, func in py]
        line = tail.rstrip().rsplit("\n", 1)[-1]  # the exception, after the frames
        m = re.match(r"\s*([A-Za-z_][\w.]*)(?::|$)", line)
        if m:
            exc = m.group(1)
    locs = _PYTEST_LOC.findall(tail)
    if locs and not py:
        frames = [_base(path) for path, _ in locs]
        if _EXC_NAME.match(locs[-1][1] or ""):
            exc = locs[-1][1]
    e_line = _PYTEST_E.search(message)
    if e_line:
        line = e_line.group(1)
    if not exc:
        m = _EXC_START.match(line)
        exc = m.group(1) if m else ""
    kept = " < ".join(reversed(frames[-INNERMOST_FRAMES:]))
    return f"{exc} | {kept} | {normalise(line)[:MAX_SIGNATURE]}"


def signature_key(sig: str) -> str:
    """The stored key of a signature: 16 hex digits of its SHA-1."""
    return hashlib.sha1(sig.encode("utf-8", "replace"), usedforsecurity=False).hexdigest()[:16]


def failure_key(message: str | None) -> str:
    return signature_key(signature(message))
