"""Custom tools without a server: manifests, deterministic packages, safe unpacking, and the
stage checker's ``name@version`` resolution."""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kraken.stage.errors import StageSchemaError
from kraken.stage.tools import CustomToolVersion, check_tool_fields, check_tool_name, set_custom_tools
from kraken.tools_registry.manifest import ManifestError, parse_manifest
from kraken.tools_registry.package import PackageError, pack_dir, unpack


def _folder(root: Path, version: str = "1.0", **extra: object) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    manifest = {"name": "t", "version": version, "entry": "bin/run", **extra}
    (root / "kraken-tool.json").write_text(json.dumps(manifest))
    (root / "bin").mkdir(exist_ok=True)
    (root / "bin" / "run").write_text("#!/bin/sh\necho hi\n")
    (root / "bin" / "run").chmod(0o755)
    return root


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ({"name": "t", "version": "1", "entry": "../x"}, "inside the tool's folder"),
        ({"name": "t", "version": "1", "entry": "/bin/sh"}, "inside the tool's folder"),
        ({"name": "-t", "version": "1", "entry": "x"}, "'name'"),
        ({"name": "t", "version": "1 2", "entry": "x"}, "'version'"),
        ({"name": "t", "version": "1", "entry": "x", "extra": 1}, "unknown keys"),
        ({"name": "t", "version": "1", "entry": "x", "fields_schema": {"type": 3}}, "not a valid JSON Schema"),
    ],
)
def test_bad_manifests_are_refused(manifest: dict[str, object], message: str) -> None:
    with pytest.raises(ManifestError, match=re.escape(message)):
        parse_manifest(json.dumps(manifest).encode())


def test_packages_are_deterministic_and_unpack_with_modes(tmp_path: Path) -> None:
    a = pack_dir(_folder(tmp_path / "a"))
    b = pack_dir(_folder(tmp_path / "b"))
    assert a.digest == b.digest and a.manifest.entry == "bin/run"
    assert pack_dir(_folder(tmp_path / "c", version="2.0")).digest != a.digest
    dest = tmp_path / "out"
    dest.mkdir()
    unpack(a.data, dest)
    assert (dest / "bin" / "run").stat().st_mode & 0o111 and (dest / "kraken-tool.json").is_file()


def test_entry_must_be_a_file_of_the_tool(tmp_path: Path) -> None:
    root = _folder(tmp_path / "t")
    (root / "bin" / "run").unlink()
    with pytest.raises(PackageError, match="is not a file of the tool"):
        pack_dir(root)


def _tar(add: Iterator[tarfile.TarInfo] | list[tarfile.TarInfo]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for info in add:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)
    return raw.getvalue()


@pytest.mark.parametrize(
    ("kind", "name", "message"),
    [
        (tarfile.LNKTYPE, "hard", "not a regular file"),
        (tarfile.SYMTYPE, "sym", "not a regular file"),
        (tarfile.CHRTYPE, "dev", "not a regular file"),
        (tarfile.REGTYPE, "a/../../up", "leaves"),
    ],
)
def test_unpack_refuses_links_devices_and_escapes(tmp_path: Path, kind: bytes, name: str, message: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = "/etc/passwd" if kind in (tarfile.LNKTYPE, tarfile.SYMTYPE) else ""
    info.size = 1 if kind == tarfile.REGTYPE else 0
    dest = tmp_path / "d" / "e"
    dest.mkdir(parents=True)
    with pytest.raises(PackageError, match=message):
        unpack(_tar([info]), dest)
    assert not (tmp_path / "d" / "up").exists() and list(dest.iterdir()) == []


def test_unpack_refuses_a_non_archive(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match=r"tar\.gz"):
        unpack(b"not a tar", tmp_path)


@pytest.fixture
def tools() -> Iterator[None]:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "additionalProperties": False}
    set_custom_tools([CustomToolVersion("t", "1.0", schema), CustomToolVersion("t", "2.0", {"type": "object"})])
    yield
    set_custom_tools([])


def test_versions_resolve_and_fields_follow_the_version(tools: None) -> None:
    assert check_tool_name("t@1.0", "s") == "t@1.0"
    assert check_tool_name("t", "s") == "t@2.0"  # the latest registered
    assert check_tool_name("shell", "s") == "shell"
    check_tool_fields("t@2.0", {"anything": 1}, "s")
    with pytest.raises(StageSchemaError) as info:
        check_tool_fields("t@1.0", {"n": "x"}, "jobs[0].steps[1]")
    assert info.value.path == "jobs[0].steps[1].n"
    with pytest.raises(StageSchemaError, match=re.escape("no version '3'; registered versions: 1.0, 2.0")) as info:
        check_tool_name("t@3", "jobs[0].steps[1]")
    assert info.value.path == "jobs[0].steps[1].tool"
    with pytest.raises(StageSchemaError, match="built-in tool 'shell' has no versions"):
        check_tool_name("shell@1", "s")
