"""A tool's folder as a package (a deterministic tar.gz: same files, same bytes, same digest),
and safe unpacking of a package or an uploaded archive.

Only regular files and directories are packed or unpacked: a symlink, a device or a path that
leaves the folder (absolute, ``..``) is refused, as is a package above ``MAX_PACKAGE_SIZE`` or
files above ``MAX_UNPACKED_SIZE`` in all.  The agent unpacks with the same function.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import posixpath
import stat
from dataclasses import dataclass
from pathlib import Path

from kraken.tools_registry.manifest import MANIFEST, Manifest, ManifestError, parse_manifest

MAX_PACKAGE_SIZE = 16 << 20  # bytes of tar.gz
MAX_UNPACKED_SIZE = 64 << 20  # bytes of files
MAX_FILES = 5000


class PackageError(ValueError):
    """The folder or archive cannot be a tool package."""


@dataclass(frozen=True)
class Package:
    manifest: Manifest
    data: bytes  # tar.gz
    digest: str  # sha256 hex of data


def _files(root: Path) -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            mode = path.lstat().st_mode
            if not stat.S_ISREG(mode):
                raise PackageError(f"{rel!r} is not a regular file (symlinks and devices are not packed)")
            out.append((rel, path))
            if len(out) > MAX_FILES:
                raise PackageError(f"the tool has more than {MAX_FILES} files")
        for d in dirnames:
            if (Path(dirpath) / d).is_symlink():
                raise PackageError(f"{(Path(dirpath) / d).relative_to(root).as_posix()!r} is a symlink")
    return out


def pack_dir(root: Path) -> Package:
    """Read the folder's manifest and pack the folder (``.git`` left out)."""
    manifest_path = root / MANIFEST
    if not manifest_path.is_file() or manifest_path.is_symlink():
        raise PackageError(f"the tool's folder has no {MANIFEST}")
    try:
        manifest = parse_manifest(manifest_path.read_bytes())
    except ManifestError as exc:
        raise PackageError(str(exc)) from None
    files = _files(root)
    if manifest.entry not in {rel for rel, _ in files}:
        raise PackageError(f"{MANIFEST}: the entry point {manifest.entry!r} is not a file of the tool")
    import tarfile  # here: an idle server does not load it (tests/unit/test_idle_imports.py)

    total = 0
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for rel, path in files:
            data = path.read_bytes()
            total += len(data)
            if total > MAX_UNPACKED_SIZE:
                raise PackageError(f"the tool's files have more than {MAX_UNPACKED_SIZE} bytes")
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            info.mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    data = raw.getvalue()
    if len(data) > MAX_PACKAGE_SIZE:
        raise PackageError(f"the tool's package has {len(data)} bytes, more than {MAX_PACKAGE_SIZE}")
    return Package(manifest=manifest, data=data, digest=hashlib.sha256(data).hexdigest())


def _member_path(name: str) -> str:
    if "\\" in name or "\x00" in name or name.startswith("/"):
        raise PackageError(f"the archive's path {name!r} is absolute or not a plain path")
    norm = posixpath.normpath(name)
    if norm == ".." or norm.startswith("../") or "/../" in f"/{norm}/":
        raise PackageError(f"the archive's path {name!r} leaves the tool's folder")
    return norm


def unpack(data: bytes, dest: Path) -> None:
    """Unpack a tar.gz into the (empty) folder ``dest``: regular files and directories only,
    every path inside ``dest``, sizes capped."""
    if len(data) > MAX_PACKAGE_SIZE:
        raise PackageError(f"the archive has {len(data)} bytes, more than {MAX_PACKAGE_SIZE}")
    import tarfile  # here: an idle server does not load it (tests/unit/test_idle_imports.py)

    total = count = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar:
                count += 1
                if count > MAX_FILES:
                    raise PackageError(f"the archive has more than {MAX_FILES} entries")
                rel = _member_path(member.name)
                if rel == ".":
                    continue
                target = dest / rel
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                if not member.isreg():
                    raise PackageError(f"the archive's entry {member.name!r} is not a regular file or a folder")
                total += member.size
                if total > MAX_UNPACKED_SIZE:
                    raise PackageError(f"the archive's files have more than {MAX_UNPACKED_SIZE} bytes")
                source = tar.extractfile(member)
                assert source is not None
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.parent.resolve() != dest.resolve() and dest.resolve() not in target.parent.resolve().parents:
                    raise PackageError(f"the archive's path {member.name!r} leaves the tool's folder")
                with open(target, "xb") as out:
                    out.write(source.read(member.size + 1)[: member.size])
                target.chmod(0o755 if member.mode & 0o111 else 0o644)
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as exc:
        raise PackageError(f"the archive cannot be read as tar.gz: {exc}") from None
