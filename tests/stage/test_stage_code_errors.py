"""Errors in the stage code itself carry the line (and column) of the problem."""

from __future__ import annotations

import pytest

from kraken.stage import StageContext, StageSchemaError, evaluate_stage


async def _error(code: str) -> StageSchemaError:
    with pytest.raises(StageSchemaError) as info:
        await evaluate_stage(code, StageContext())
    return info.value


async def test_syntax_error_reports_its_line_and_column() -> None:
    err = await _error("def stage(ctx):\n    x = 1\n    y = 1 +* 2\n    return {}\n")
    assert (err.line, err.column) == (3, 12)
    assert str(err).startswith("line 3: syntax error: unexpected symbol '*'")
    assert err.to_dict() == {"message": err.message, "line": 3, "column": 12, "path": None}


async def test_unclosed_bracket_points_at_the_last_line() -> None:
    err = await _error("def stage(ctx):\n    return {\n        'jobs': [\n")
    assert err.line == 3
    assert "syntax error" in err.message


async def test_runtime_key_error_reports_the_line() -> None:
    err = await _error("def stage(ctx):\n    d = {}\n    x = 1\n    return d['missing']\n")
    assert err.line == 4
    assert str(err) == 'line 4: key "missing" not found'


async def test_fail_in_a_helper_reports_the_helper_line() -> None:
    code = "def helper():\n    fail('no way')\n\ndef stage(ctx):\n    return helper()\n"
    err = await _error(code)
    assert err.line == 2
    assert "no way" in err.message


async def test_calling_an_unknown_function_names_it() -> None:
    err = await _error("def stage(ctx):\n    return frobnicate(ctx)\n")
    assert err.line == 2
    assert "'frobnicate' is not defined" in err.message


async def test_missing_stage_function() -> None:
    err = await _error("def stages(ctx):\n    return {}\n")
    assert err.line is None
    assert "must define a function 'stage(ctx)'" in str(err)


async def test_stage_that_is_not_a_function() -> None:
    err = await _error("stage = {'jobs': []}\n")
    assert "'stage' must be a function" in err.message


async def test_stage_returning_a_list() -> None:
    err = await _error("def stage(ctx):\n    return [1, 2]\n")
    assert err.message == "stage(ctx) must return a dict, got list"


async def test_stage_returning_a_function_inside_the_dict() -> None:
    err = await _error("def stage(ctx):\n    return {'jobs': stage}\n")
    assert "plain data" in err.message
    assert "function" in err.message


async def test_stage_with_a_wrong_signature() -> None:
    err = await _error("def stage():\n    return {}\n")
    assert err.message.startswith("calling stage(ctx):")


async def test_deep_recursion_is_an_error_not_a_crash() -> None:
    err = await _error("def f(n):\n    return f(n + 1)\n\ndef stage(ctx):\n    return f(0)\n")
    assert err.line == 2
    assert "recursion" in err.message
