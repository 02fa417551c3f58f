"""The command-line client's parts that need no server: the light import, credentials,
arguments, artifact paths, stage files, tables."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from kraken.client import config
from kraken.client.commands import parse_args, read_stage_file, safe_destination
from kraken.client.output import table


def test_importing_the_kraken_command_loads_no_http_client() -> None:
    """``kraken agent`` imports kraken.cli: the client's httpx (and rich) stay out until used."""
    code = "import sys, kraken.cli; print(sorted(m for m in ('httpx', 'rich') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_credentials_file_is_private_and_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("KRAKEN_URL", raising=False)
    monkeypatch.delenv("KRAKEN_TOKEN", raising=False)
    with pytest.raises(config.ConfigError, match="kraken client login"):
        config.load()
    path = config.save(config.Credentials("http://ci.example:8080", "tok"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert config.load() == config.Credentials("http://ci.example:8080", "tok")
    monkeypatch.setenv("KRAKEN_TOKEN", "from-env")
    assert config.load().token == "from-env"
    path.write_text("[1]")
    monkeypatch.delenv("KRAKEN_TOKEN")
    with pytest.raises(config.ConfigError, match="not a JSON object"):
        config.load()


def test_flow_arguments() -> None:
    assert parse_args(["n=3", "name=pear", "flags=[1,2]", "empty="]) == {
        "n": 3,
        "name": "pear",
        "flags": [1, 2],
        "empty": "",
    }
    with pytest.raises(typer.Exit):
        parse_args(["novalue"])


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "a/../../x", ".."])
def test_an_artifact_path_cannot_leave_the_destination(tmp_path: Path, bad: str) -> None:
    with pytest.raises(typer.Exit):
        safe_destination(tmp_path, bad)


def test_artifact_paths_keep_their_folders(tmp_path: Path) -> None:
    assert safe_destination(tmp_path, "a/./b/c.txt") == tmp_path / "a" / "b" / "c.txt"


def test_stage_files(tmp_path: Path) -> None:
    code = tmp_path / "build.star"
    code.write_text("def stage(ctx): pass\n")
    assert read_stage_file(code, None) == {"name": "build", "schema_code": "def stage(ctx): pass\n"}
    fields = tmp_path / "s.json"
    fields.write_text(json.dumps({"name": "n", "schema_code": "x", "enabled": False}))
    assert read_stage_file(fields, "other")["name"] == "other"
    fields.write_text(json.dumps({"schema_code": "x"}))
    with pytest.raises(typer.Exit):
        read_stage_file(fields, None)
    fields.write_text("{")
    with pytest.raises(typer.Exit):
        read_stage_file(fields, None)


def test_table() -> None:
    text = table([(1, None, True), (22, "b", False)], ("ID", "NAME", "OK"))
    assert text == "ID  NAME  OK\n1   -     yes\n22  b     no"
