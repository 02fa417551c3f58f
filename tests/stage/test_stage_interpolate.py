"""#{name} interpolation."""

from __future__ import annotations

import pytest

from kraken.stage import StageSchemaError, interpolate


def test_strings_lists_and_dicts_recursively() -> None:
    value = {"cmd": "make -j#{jobs} #{target}", "env": {"N": "#{jobs}"}, "list": ["#{target}", 3, None]}
    assert interpolate(value, {"jobs": 4, "target": "all"}) == {
        "cmd": "make -j4 all",
        "env": {"N": "4"},
        "list": ["all", 3, None],
    }


def test_values_are_rendered_with_str() -> None:
    assert interpolate("#{a}/#{b}/#{ c }", {"a": True, "b": 1.5, "c": None}) == "True/1.5/None"


def test_dotted_names_read_nested_dicts() -> None:
    assert interpolate("-p #{config.p1}", {"config": {"name": "c1", "p1": "x"}}) == "-p x"


def test_secrets_are_left_for_later() -> None:
    text = "token=#{secrets.GH_TOKEN} user=#{user}"
    assert interpolate(text, {"user": "bob"}) == "token=#{secrets.GH_TOKEN} user=bob"


def test_unknown_name_is_an_error_naming_it() -> None:
    with pytest.raises(StageSchemaError) as info:
        interpolate(["ok", {"cmd": "echo #{nope}"}], {"user": "bob"})
    assert "'nope'" in info.value.message
    assert "user" in info.value.message  # known arguments are listed


def test_config_key_without_a_config() -> None:
    with pytest.raises(StageSchemaError) as info:
        interpolate("#{config.p1}", {})
    assert "no config" in info.value.message


def test_non_strings_pass_through() -> None:
    assert interpolate(42, {}) == 42
    assert interpolate({"a": [True]}, {}) == {"a": [True]}
