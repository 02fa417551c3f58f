"""Secret references, masking and the key kept outside the database."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from kraken.core.config import Settings
from kraken.secrets import MASK, Masker, SecretsKeyError, referenced_names, secret_box, substitute
from kraken.secrets.crypto import SecretBox
from kraken.secrets.refs import step_secret_names


def test_references_and_substitution() -> None:
    fields = {"cmd": "curl -u #{secrets.user}:#{ secrets.pw } #{url}", "env": {"K": "#{secrets.key.key}"}}
    assert referenced_names(fields) == {"user", "pw", "key"}
    secrets = {
        "user": {"kind": "simple", "value": "bob"},
        "pw": {"kind": "simple", "value": "hunter2"},
        "key": {"kind": "ssh-key", "user": "git", "key": "-----KEY-----"},
    }
    out = substitute(fields, secrets)
    assert out == {"cmd": "curl -u bob:hunter2 #{url}", "env": {"K": "-----KEY-----"}}
    assert substitute("#{secrets.key.user} #{secrets.nope}", secrets) == "git #{secrets.nope}"
    assert step_secret_names("git", {"checkout": "x", "ssh-key": "deploy"}) == {"deploy"}
    assert step_secret_names("shell", {"cmd": "echo", "ssh-key": "deploy"}) == {"deploy"}
    assert step_secret_names("pytest", {"params": "x", "ssh-key": "deploy"}) == set()
    assert step_secret_names("git", {"checkout": "x", "access-token": "tok"}) == {"tok"}
    assert step_secret_names("git", {"checkout": "x", "access-token": "#{KK_SECRET_SIMPLE_tok}"}) == {"tok"}


def test_the_original_legacy_secret_names() -> None:
    secrets = {
        "tok": {"kind": "simple", "value": "s3cr3t"},
        "deploy": {"kind": "ssh-key", "user": "git", "key": "-----KEY-----"},
    }
    text = "#{KK_SECRET_SIMPLE_tok} #{KK_SECRET_USER_deploy} #{KK_SECRET_KEY_deploy} #{KK_SECRET_SIMPLE_nope}"
    assert referenced_names({"cmd": text}) == {"tok", "deploy", "nope"}
    assert substitute(text, secrets) == "s3cr3t git -----KEY----- #{KK_SECRET_SIMPLE_nope}"


def test_masker_hides_values_multiline_keys_and_url_encoded_forms() -> None:
    key = "-----BEGIN KEY-----\nAAAAB3NzaC1yc2EAAAADAQABAAABAQC\n-----END KEY-----"
    m = Masker(["hunter2", "p@ss word", key, "ab"])
    assert m.text("pw=hunter2 and hunter2") == f"pw={MASK} and {MASK}"
    assert m.text("url=https://u:p%40ss%20word@host") == f"url=https://u:{MASK}@host"
    key_line = "AAAAB3NzaC1yc2EAAAADAQABAAABAQC"
    assert MASK in m.text(key_line) and "AAAAB3" not in m.text(key_line)
    assert m.text("ab stays") == "ab stays"  # too short to mask without ruining logs
    assert m.value({"a": ["x hunter2"], "n": 1}) == {"a": [f"x {MASK}"], "n": 1}
    assert not Masker([])


def test_key_file_generated_once_with_mode_0600(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    box = secret_box(settings)
    key_file = tmp_path / "data" / "secrets.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    token = box.encrypt({"value": "plain-secret-text"})
    assert "plain-secret-text" not in token
    # Another process (a new box from the same file) reads what this one wrote.
    assert SecretBox(key_file.read_bytes().strip()).decrypt(token) == {"value": "plain-secret-text"}
    with pytest.raises(SecretsKeyError, match="another key"):
        SecretBox(Fernet.generate_key()).decrypt(token)


def test_env_key_wins(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    box = secret_box(Settings(data_dir=tmp_path, secrets_key=key))
    assert not (tmp_path / "secrets.key").exists()
    assert SecretBox(key).decrypt(box.encrypt({"value": "x"})) == {"value": "x"}
