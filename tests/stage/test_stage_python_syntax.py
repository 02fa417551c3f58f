"""Python that starlark refuses, converted or emulated before evaluation (``kraken.stage.pyast``):
each conversion evaluated in the real sandbox, errors at the author's line, refusals naming the
construct."""

from __future__ import annotations

from typing import Any

import pytest

from kraken.stage import StageContext, StageSchemaError, evaluate_stage
from kraken.stage.evaluate import run_stage_code
from kraken.stage.pycompat import convert


def _code(body: str, value: str) -> str:
    return "def stage(ctx):\n" + body + f"    return {{'value': {value}}}\n"


async def _value(body: str, value: str) -> Any:
    return (await run_stage_code(_code(body, value), StageContext()))["value"]


async def _error(body: str) -> StageSchemaError:
    with pytest.raises(StageSchemaError) as info:
        await run_stage_code(_code(body, "None"), StageContext())
    return info.value


@pytest.mark.parametrize(
    ("body", "value", "expected"),
    [
        ("    i = 0\n    while i < 3:\n        i += 1\n", "i", 3),
        ("    i = 0\n    while i < 5: i += 1\n", "i", 5),
        (
            "    i, n = 0, 0\n    while True:\n        i += 1\n        if i % 2:\n            continue\n"
            "        n += 1\n        if i >= 8:\n            break\n",
            "[i, n]",
            [8, 4],
        ),
        (
            "    todo = [1, 2, 3]\n    out = []\n    while todo and ctx.args.stop is None:\n"
            "        out.append(todo.pop())\n",
            "out",
            [3, 2, 1],
        ),
        ("    x = [2 ** 10, 2.0 ** -1, (1 + 2) ** 2, 2 ** 3 ** 2, -2 ** 2, 7 ** 0]\n", "x", [1024, 0.5, 9, 512, -4, 1]),
        ("    x = 3\n    x **= 2\n", "x", 9),
        ("    s = {1, 2, 1}\n", "[len(s), 2 in s, 5 in s, sorted(s)]", [2, True, False, [1, 2]]),
        (
            "    s = set()\n    t = set(['a', 'b', 'a'])\n    f = frozenset([1])\n",
            "[sorted(s), sorted(t), list(f)]",
            [[], ["a", "b"], [1]],
        ),
        ("    x = {i % 3 for i in range(9)}\n", "[len(x), sorted(x)]", [3, [0, 1, 2]]),
        ("    n = 2\n    d = {'k': 'v'}\n", "f'{n + 1}-{d[\"k\"]}-{ctx.is_dev}-{n!r}-{{x}}-{n}'", "3-v-False-2-{x}-2"),
        (
            "    x = ','.join(str(i) for i in range(3))\n    y = list((i * 2 for i in range(2)))\n",
            "[x, y]",
            ["0,1,2", [0, 2]],
        ),
        ("    a = 2\n", "[1 < a < 3, 1 < a <= 1, 0 == 0 != 1]", [True, False, True]),
        ("    x = [3, 1, 2]\n    y = x\n    x.sort(reverse=True)\n    y.sort(key=lambda v: -v)\n", "x", [3, 2, 1]),
        (
            "    try:\n        x = 1\n    except ValueError as e:\n        x = str(e)\n    except:\n        x = -1\n"
            "    else:\n        x += 10\n    finally:\n        x += 100\n",
            "x",
            111,
        ),
        ("    assert 1 == 1, 'never'\n    d = {'a': 1, 'b': 2}\n    del d['a']\n", "d", {"b": 2}),
    ],
)
async def test_python_constructs_run_as_in_python(body: str, value: str, expected: Any) -> None:
    local: dict[str, Any] = {}
    exec(_code(body, value).replace("ctx.args.stop", "None"), {}, local)  # the same code, run by Python
    assert local["stage"](type("Ctx", (), {"is_dev": False})())["value"] == expected
    assert await _value(body, value) == expected


async def test_lines_after_a_converted_while_stay_right() -> None:
    body = "    i = 0\n    while (i <\n           3):\n        i += 1\n    x = undefined_name\n"
    error = await _error(body)
    assert error.line == 6 and "undefined_name" in error.message
    converted = convert(_code(body, "None"))
    assert converted.code.count("\n") > _code(body, "None").count("\n")  # lines were added ...
    assert converted.original_line(converted.code.count("\n")) == 7  # ... and are mapped back


async def test_a_while_loop_that_does_not_end_is_stopped_at_its_line() -> None:
    error = await _error("    i = 0\n    while i >= 0:\n        i += 1\n")
    assert error.line == 3 and "while loop ran 1000000 times" in error.message


async def test_errors_inside_try_say_that_except_cannot_catch_them() -> None:
    error = await _error("    try:\n        x = {}['k']\n    except KeyError:\n        x = 1\n")
    assert error.line == 3 and 'key "k" not found' in error.message
    assert "the 'except' at line 4 cannot catch it" in error.message


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("    x = 2 ** 0.5\n", 2, "only whole-number exponents"),
        ("    raise ValueError('bad: %s' % 3)\n", 2, "fail: bad: 3"),
        ("    x = 1\n    assert x == 2, 'x is not 2'\n", 3, "fail: x is not 2"),
        ("    assert 1 == 2\n", 2, "assertion failed: 1 == 2"),
    ],
)
async def test_failures_name_their_line(body: str, line: int, message: str) -> None:
    error = await _error(body)
    assert error.line == line and message in error.message, error


@pytest.mark.parametrize(
    ("body", "line", "construct"),
    [
        ("    x = 1\n    class A:\n        pass\n", 3, "'class'"),
        ("    import os\n", 2, "'import'"),
        ("    from os import path\n", 2, "'import'"),
        ("    with open('f') as f:\n        pass\n", 2, "'with'"),
        ("    global X\n", 2, "'global'"),
        ("    if (y := 1):\n        pass\n", 2, "':=' (assignment expression)"),
        ("    n = 1\n    s = f'{n:03d}'\n", 3, "a format spec in an f-string ('{...:03d}')"),
        ("    x = 1 < len([]) < 3\n", 2, "a chained comparison of expressions"),
        ("    for i in []:\n        pass\n    else:\n        pass\n", 2, "'for ... else'"),
        ("    i = 0\n    while i:\n        pass\n    else:\n        pass\n", 3, "'while ... else'"),
        ("    x = b'abc'\n", 2, "a bytes literal"),
        ("    x = 1\n    del x\n", 3, "'del' of a name"),
        ("    def g():\n        yield 1\n", 3, "'yield'"),
        ("    x = 1; assert x\n", 2, "'assert' sharing its line"),
    ],
)
async def test_what_cannot_run_is_refused_naming_construct_and_line(body: str, line: int, construct: str) -> None:
    error = await _error(body)
    assert error.line == line, error
    assert error.message.startswith(construct) and "is not available in stage code" in error.message, error


async def test_tabs_and_conversions_together() -> None:
    code = (
        "def stage(ctx):\n"
        "\tn = 0\n"
        "\twhile n < 2 ** 2:\n"
        "\t\tn += 1\n"
        "\tnames = {'a%d' % i for i in range(n)}\n"
        '\treturn {"jobs": [{"name": f"j{n * 2}", "environments": [{}],\n'
        '\t\t"steps": [{"tool": "shell", "cmd": "echo " + " ".join(sorted(names))}]}]}\n'
    )
    schema = await evaluate_stage(code, StageContext())
    assert schema["jobs"][0]["name"] == "j8"
    assert schema["jobs"][0]["steps"][0]["cmd"] == "echo a0 a1 a2 a3"


def test_sandbox_file_names_match_the_error_parser() -> None:
    """The worker script keeps its own copies of the file names the error parser looks for."""
    from kraken.stage import errors, sandbox_worker

    assert (sandbox_worker.USER_FILE, sandbox_worker.OWN_FILE) == (errors.USER_FILE, errors.OWN_FILE)
