"""The sandbox offers no files, network or imports; plain starlark features work."""

from __future__ import annotations

import pytest

from kraken.stage import StageContext, StageSchemaError, evaluate_stage


async def _error(code: str) -> StageSchemaError:
    with pytest.raises(StageSchemaError) as info:
        await evaluate_stage(code, StageContext())
    return info.value


async def test_open_is_not_available() -> None:
    err = await _error("def stage(ctx):\n    return open('/etc/passwd').read()\n")
    assert err.line == 2
    assert "'open' is not defined" in err.message


async def test_load_is_not_available() -> None:
    err = await _error("load('other.star', 'x')\n\ndef stage(ctx):\n    return {}\n")
    assert err.line == 1
    assert "load() is not available" in err.message


async def test_import_is_not_available() -> None:
    err = await _error("import os\n\ndef stage(ctx):\n    return {}\n")
    assert err.line == 1
    assert "'import' is not available" in err.message


@pytest.mark.parametrize("name", ["__import__", "exec", "eval", "globals", "compile"])
async def test_python_escape_hatches_do_not_exist(name: str) -> None:
    err = await _error(f"def stage(ctx):\n    return {name}('os')\n")
    assert f"'{name}' is not defined" in err.message


async def test_helpers_top_level_code_struct_and_json_work() -> None:
    code = (
        "SYSTEMS = ['ubuntu-22.04', 'ubuntu-24.04']\n"
        "if len(SYSTEMS) > 1:\n"
        "    MULTI = True\n"
        "def step(cmd):\n"
        "    return {'tool': 'shell', 'cmd': cmd}\n"
        "def stage(ctx):\n"
        "    s = struct(n=json.decode('3'))\n"
        "    steps = [step('echo %d' % i) for i in range(s.n)]\n"
        "    return {'jobs': [{'name': 'j', 'steps': steps, 'environments': [{'system': SYSTEMS}]}]}\n"
    )
    schema = await evaluate_stage(code, StageContext())
    job = schema["jobs"][0]
    assert [step["cmd"] for step in job["steps"]] == ["echo 0", "echo 1", "echo 2"]
    assert [env["system"] for env in job["environments"]] == ["ubuntu-22.04", "ubuntu-24.04"]
