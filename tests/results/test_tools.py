"""The result tools run for real through the direct executor (real pytest, ruff, shell globs)."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kraken.agent.executors.base import JobEnvironment
from kraken.agent.executors.direct import DirectExecutor
from kraken.agent.tools.base import StepOutcome, Tool, ToolContext
from kraken.agent.tools.registry import get_tool, tool_field_schemas
from kraken.protocol import AnyJobMessage

PYTEST = f"{sys.executable} -m pytest"
RUFF = str(Path(sys.executable).parent / "ruff")


class Env:
    def __init__(self, executor: DirectExecutor) -> None:
        self.executor = executor
        self.sent: list[dict[str, Any]] = []
        self.lines: list[str] = []

    @property
    def workdir(self) -> Path:
        return Path(self.executor.workdir)

    def write(self, rel: str, text: str) -> Path:
        p = self.workdir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        return p

    async def run(self, tool: str, fields: dict[str, Any], extra: dict[str, Any] | None = None) -> StepOutcome:
        async def send(msg: AnyJobMessage) -> None:
            self.sent.append(msg.model_dump(exclude={"job_id", "seq"}))

        async def log(line: str) -> None:
            self.lines.append(line)

        ctx = ToolContext(
            executor=self.executor, job_id=1, step_index=2, log=log, send=send, timeout=120, extra=extra or {}
        )
        cls: type[Tool] = get_tool(tool)
        return await cls().run(ctx, fields)

    def results(self) -> list[list[Any]]:
        return [r for m in self.sent if m["type"] == "test_results" for r in m["results"]]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    executor = DirectExecutor(JobEnvironment(job_id=1, agent_name="t", system="any", data_dir=str(tmp_path)))
    await executor.start()
    yield Env(executor)
    await executor.stop()


TESTS = """
import os
import pytest

def test_ok():
    assert True

@pytest.mark.parametrize("n", [1, 2, 3])
def test_param(n):
    assert n != 2

def test_skip():
    pytest.skip("not here")

@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")

def test_error(broken):
    pass
"""


async def test_pytest_one_process_all_results(env: Env) -> None:
    env.write("proj/tests/test_x.py", TESTS)
    out = await env.run("pytest", {"params": "tests -p no:cacheprovider", "cwd": "proj", "pytest_exe": PYTEST})
    assert out.result == "passed", out  # test failures are not step failures
    got = {r[0]: r[1] for r in env.results()}
    assert got == {
        "tests.test_x::test_ok": "passed",
        "tests.test_x::test_param[1]": "passed",
        "tests.test_x::test_param[2]": "failed",
        "tests.test_x::test_param[3]": "passed",
        "tests.test_x::test_skip": "skipped",
        "tests.test_x::test_error": "error",
    }
    msg = env.sent[0]
    assert msg["type"] == "test_results" and msg["step_index"] == 2 and msg["tool"] == "pytest"
    failed = next(r for r in env.results() if r[1] == "failed")
    assert "assert 2 != 2" in failed[3]
    assert any("collected 6 results" in ln for ln in env.lines)


async def test_pytest_pythonpath_and_env(env: Env) -> None:
    env.write("lib/helper.py", "VALUE = 42\n")
    env.write("t/test_p.py", "import os, helper\ndef test_p():\n    assert helper.VALUE == int(os.environ['WANT'])\n")
    out = await env.run(
        "pytest", {"params": ["t"], "pythonpath": f"{env.workdir}/lib", "pytest_exe": PYTEST, "env": {"WANT": 42}}
    )
    assert out.result == "passed" and env.results()[0][1] == "passed"


async def test_pytest_that_cannot_run_fails_the_step(env: Env) -> None:
    out = await env.run("pytest", {"pytest_exe": "/nonexistent/python3 -m pytest"})
    assert out.result == "error" and "cannot run" in (out.message or "")
    env.write("t/test_a.py", "def test_a():\n    pass\n")
    out = await env.run("pytest", {"params": "t --no-such-option", "pytest_exe": PYTEST})
    assert out.result == "error" and "usage error" in (out.message or "")
    env.write("empty/readme.txt", "")
    out = await env.run("pytest", {"params": "empty", "pytest_exe": PYTEST})
    assert out.result == "passed" and out.message == "no tests were collected"


def _junit(n: int, start: int = 0) -> str:
    cases = "".join(f'<testcase classname="c" name="t{i}" time="0.1"/>' for i in range(start, start + n))
    return f"<testsuite>{cases}</testsuite>"


async def test_junit_collect_globs_batches_and_bad_files(env: Env) -> None:
    env.write("out/a/report-1.xml", _junit(6000))
    env.write("out/b/deep/report-2.xml", _junit(6001, start=6000))
    env.write("out/other.txt", "x")
    out = await env.run("junit_collect", {"file_glob": "**/report-*.xml", "cwd": "out"})
    assert out.result == "passed", out
    assert len(env.results()) == 12001
    assert [len(m["results"]) for m in env.sent] == [5000, 5000, 2001]  # batches, nothing lost or doubled
    assert len({r[0] for r in env.results()}) == 12001

    env.sent.clear()
    env.write("bad/good.xml", _junit(2))
    env.write("bad/zbroken.xml", "<testsuite>\n<testcase name='x'/>\n<testcase name='y'>\n</testsuite>")
    out = await env.run("junit_collect", {"file_glob": "bad/*.xml"})
    assert out.result == "error"
    assert out.message == "zbroken.xml:4: malformed XML: mismatched tag (column 2)" or "zbroken.xml:4:" in (
        out.message or ""
    )
    assert [r[0] for r in env.results()] == ["c::t0", "c::t1", "x"]  # read before the error: kept

    out = await env.run("junit_collect", {"file_glob": "nothing/*.xml"})
    assert out.result == "error" and "no file matches" in (out.message or "")
    out = await env.run("junit_collect", {"file_glob": "*.xml; rm -rf /"})
    assert out.result == "error" and "not allowed" in (out.message or "")


async def test_values_collect(env: Env) -> None:
    env.write("bench/v1.json", '{"bench::sort": {"time_s": 1.25}, "bench::map": {"time_s": 0.5}}')
    out = await env.run("values_collect", {"file_glob": "bench/*.json"})
    assert out.result == "passed"
    assert sorted((r[0], r[4]) for r in env.results()) == [
        ("bench::map", {"time_s": 0.5}),
        ("bench::sort", {"time_s": 1.25}),
    ]
    env.write("bench/v2.json", "{broken")
    out = await env.run("values_collect", {"file_glob": "bench/v2.json"})
    assert out.result == "error" and "v2.json:1: malformed JSON" in (out.message or "")


async def test_gotest_with_a_go_that_prints_test2json(env: Env) -> None:
    events = [
        '{"Action":"run","Package":"ex/m","Test":"TestA"}',
        '{"Action":"pass","Package":"ex/m","Test":"TestA","Elapsed":0.1}',
        '{"Action":"run","Package":"ex/m","Test":"TestB"}',
        '{"Action":"output","Package":"ex/m","Test":"TestB","Output":"m_test.go:5: bad\\n"}',
        '{"Action":"fail","Package":"ex/m","Test":"TestB","Elapsed":0}',
        '{"Action":"fail","Package":"ex/m","Elapsed":0.2}',
    ]
    fake = env.write(
        "fakego",
        "#!/bin/sh\n[ \"$1 $2\" = 'test -json' ] || exit 9\ncat <<'EOF'\n" + "\n".join(events) + "\nEOF\nexit 1\n",
    )
    os.chmod(fake, 0o755)
    out = await env.run("gotest", {"go_exe": str(fake)})
    assert out.result == "passed", out
    assert [(r[0], r[1]) for r in env.results()] == [("ex/m::TestA", "passed"), ("ex/m::TestB", "failed")]
    out = await env.run("gotest", {"go_exe": "/nonexistent/go"})
    assert out.result == "error" and "cannot run" in (out.message or "")


async def test_ruff_issues_and_missing_pylint(env: Env) -> None:
    env.write("src/pkg/a.py", "import os\n\n\ndef f():\n    return undefined_name\n")
    out = await env.run("ruff", {"cwd": "src", "exe": RUFF, "params": ". --isolated"})
    assert out.result == "passed", (out, env.lines)
    issues = [i for m in env.sent if m["type"] == "issues" for i in m["issues"]]
    assert sorted((i[0], i[1], i[3], i[5]) for i in issues) == [
        ("pkg/a.py", 1, "F401", "error"),
        ("pkg/a.py", 5, "F821", "error"),
    ]
    env.sent.clear()
    env.write("clean/b.py", "X = 1\n")
    out = await env.run("ruff", {"cwd": "clean", "exe": RUFF, "params": ". --isolated"})
    assert out.result == "passed" and env.sent == [{"type": "issues", "step_index": 2, "tool": "ruff", "issues": []}]
    out = await env.run("pylint", {"exe": "/nonexistent/pylint"})
    assert out.result == "error" and "cannot run" in (out.message or "")


def test_tools_are_registered_with_strict_schemas() -> None:
    import jsonschema

    schemas = tool_field_schemas()
    for name in ("pytest", "junit_collect", "gotest", "values_collect", "ruff", "pylint"):
        schema = schemas[name]
        forms = [schema["then"], schema["else"]] if "if" in schema else [schema]  # values_collect: two forms
        assert all(form.get("additionalProperties") is False for form in forms), name
        jsonschema.Draft202012Validator.check_schema(schema)
    v = jsonschema.Draft202012Validator(schemas["junit_collect"])
    assert not list(v.iter_errors({"file_glob": "a/*.xml", "cwd": "x"}))
    assert list(v.iter_errors({"file_glob": "a/*.xml", "bogus": 1}))
    assert list(v.iter_errors({}))


async def test_batches_are_bounded_in_bytes_too(env: Env) -> None:
    big = "x" * 15000
    cases = "".join(f'<testcase name="t{i}"><failure message="m">{big}</failure></testcase>' for i in range(300))
    env.write("big.xml", f"<testsuite>{cases}</testsuite>")
    out = await env.run("junit_collect", {"file_glob": "big.xml"})
    assert out.result == "passed"
    assert len(env.results()) == 300 and len(env.sent) > 3
    assert all(len(str(m)) < 2 * 2**20 for m in env.sent)


FLAKY = """
import os
from pathlib import Path

def test_ok():
    pass

def test_flaky():
    marker = Path(os.environ["MARKER"])
    if not marker.exists():
        marker.write_text("failed once")
        assert False, "first run fails"

def test_broken():
    assert False, "always"
"""


def _attempts(env: Env) -> list[tuple[int, list[tuple[str, str]]]]:
    return [
        (m["attempt"], [(r[0].rsplit("::", 1)[1], r[1]) for r in m["results"]])
        for m in env.sent
        if m["type"] == "test_results"
    ]


async def test_pytest_reruns_failed_tests_and_records_each_attempt(env: Env) -> None:
    env.write("proj/tests/test_f.py", FLAKY)
    fields = {
        "params": "tests",
        "cwd": "proj",
        "pytest_exe": PYTEST,
        "env": {"MARKER": str(env.workdir / "marker")},
        "rerun_failed": 2,
    }
    out = await env.run("pytest", fields)
    assert out.result == "passed", out
    assert _attempts(env) == [
        (1, [("test_ok", "passed"), ("test_flaky", "failed"), ("test_broken", "failed")]),
        (2, [("test_flaky", "passed"), ("test_broken", "failed")]),  # only the failed ones again
        (3, [("test_broken", "failed")]),
    ]
    assert all(m["rerun_clears"] for m in env.sent)
    assert any("1 test(s) still failed after 2 rerun(s)" in ln for ln in env.lines)

    env.sent.clear()
    (env.workdir / "marker").unlink()
    out = await env.run("pytest", {**fields, "rerun_failed": 1, "flaky_fails_run": True})
    assert out.result == "passed"
    assert [a for a, _ in _attempts(env)] == [1, 2] and not any(m["rerun_clears"] for m in env.sent)

    env.sent.clear()
    out = await env.run("pytest", {**fields, "params": "tests -p no:cacheprovider"})
    assert out.result == "error" and "rerun_failed" in (out.message or "") and not env.sent


async def test_pytest_without_failures_does_not_rerun(env: Env) -> None:
    env.write("proj/tests/test_ok.py", "def test_ok():\n    pass\n")
    out = await env.run("pytest", {"params": "tests", "cwd": "proj", "pytest_exe": PYTEST, "rerun_failed": 3})
    assert out.result == "passed" and [a for a, _ in _attempts(env)] == [1]


# writes a JUnit report of the tests named in $KK_RERUN_FILE: c::t1 passes now, the others fail again
RERUN = (
    'printf "<testsuite>" > "$KK_RERUN_REPORT"; while read -r n; do t=${n#c::}; '
    'if [ "$t" = t1 ]; then printf "<testcase classname=\\"c\\" name=\\"%s\\"/>" "$t"; '
    'else printf "<testcase classname=\\"c\\" name=\\"%s\\"><failure message=\\"m\\"/></testcase>" "$t"; fi '
    '>> "$KK_RERUN_REPORT"; done < "$KK_RERUN_FILE"; echo "</testsuite>" >> "$KK_RERUN_REPORT"'
)


async def test_junit_collect_reruns_through_a_command(env: Env) -> None:
    cases = '<testcase classname="c" name="t0"/>' + "".join(
        f'<testcase classname="c" name="t{i}"><failure message="m"/></testcase>' for i in (1, 2)
    )
    env.write("out/r.xml", f"<testsuite>{cases}</testsuite>")
    out = await env.run("junit_collect", {"file_glob": "out/*.xml", "rerun_failed": 2, "rerun_command": RERUN})
    assert out.result == "passed", (out, env.lines)
    assert _attempts(env) == [
        (1, [("t0", "passed"), ("t1", "failed"), ("t2", "failed")]),
        (2, [("t1", "passed"), ("t2", "failed")]),
        (3, [("t2", "failed")]),
    ]
    env.sent.clear()
    out = await env.run("junit_collect", {"file_glob": "out/*.xml", "rerun_failed": 1, "rerun_command": "true"})
    assert out.result == "error" and "wrote no report to $KK_RERUN_REPORT" in (out.message or "")


def test_rerun_keys_are_validated() -> None:
    import jsonschema

    schemas = tool_field_schemas()
    py = jsonschema.Draft202012Validator(schemas["pytest"])
    assert not list(py.iter_errors({"rerun_failed": 3, "flaky_fails_run": True}))
    for bad in ({"rerun_failed": -1}, {"rerun_failed": 11}, {"rerun_failed": "2"}, {"flaky_fails_run": "no"}):
        assert list(py.iter_errors(bad)), bad
    ju = jsonschema.Draft202012Validator(schemas["junit_collect"])
    assert not list(ju.iter_errors({"file_glob": "a", "rerun_failed": 1, "rerun_command": "x"}))
    assert not list(ju.iter_errors({"file_glob": "a", "rerun_failed": 0}))
    assert list(ju.iter_errors({"file_glob": "a", "rerun_failed": 1}))  # no command to rerun with
    assert list(ju.iter_errors({"file_glob": "a", "rerun_command": "x"}))  # a command that would never run


SUITE = """
import pytest

class TestK:
    def test_m(self):
        pass

@pytest.mark.parametrize("n", range(6))
def test_p(n):
    assert n != 4
"""


async def test_pytest_parts_run_their_share_and_cover_the_suite(env: Env) -> None:
    env.write("proj/tests/test_s.py", SUITE)
    env.write("proj/tests/test_t.py", "def test_one():\n    pass\n\ndef test_two():\n    pass\n")
    # history: the longest tests by their result names (as the server sends them)
    durations = {"tests.test_s::test_p[0]": 9.0, "tests.test_s::test_p[1]": 8.0, "tests.test_t::test_one": 1.0}
    seen: list[list[str]] = []
    for part in (1, 2, 3):
        env.sent.clear()
        split = {"part": part, "parts": 3, "durations": durations, "tests_list": None}
        fields = {"params": "tests -qq", "cwd": "proj", "pytest_exe": PYTEST}  # any verbosity
        out = await env.run("pytest", fields, {"split": split})
        assert out.result == "passed", (out, env.lines[-5:])
        seen.append(sorted(r[0] for r in env.results()))
        info = next(m for m in env.sent if m["type"] == "step_info")["data"]["split"]
        assert info["part"] == part and info["of"] == 9 and info["tests"] == len(seen[-1])
    # the two longest go to parts 1 and 2; every test runs in exactly one part, named as without a split
    assert "tests.test_s::test_p[0]" in seen[0] and "tests.test_s::test_p[1]" in seen[1]
    everything = sorted(n for s in seen for n in s)
    assert everything == sorted(
        [
            "tests.test_s.TestK::test_m",
            *(f"tests.test_s::test_p[{i}]" for i in range(6)),
            "tests.test_t::test_one",
            "tests.test_t::test_two",
        ]
    )
    assert [len(s) for s in seen] == [3, 3, 3]


def _pytest_commands(env: Env) -> list[str]:
    return [ln for ln in env.lines if ln.startswith("$ ") and "-m pytest" in ln]


async def test_pytest_part_starts_pytest_once_and_its_reruns_keep_to_its_share(env: Env) -> None:
    env.write("proj/tests/test_f.py", FLAKY)
    fields = {
        "params": "tests",
        "cwd": "proj",
        "pytest_exe": PYTEST,
        "env": {"MARKER": str(env.workdir / "marker")},
        "rerun_failed": 1,
    }
    # no history: by name, test_broken and test_ok to part 1, test_flaky to part 2
    got = {}
    for part in (1, 2):
        env.sent.clear()
        env.lines.clear()
        out = await env.run("pytest", fields, {"split": {"part": part, "parts": 2, "durations": {}}})
        assert out.result == "passed", (out, env.lines[-5:])
        got[part] = _attempts(env)
        # one pytest process per attempt, none only to collect
        assert len(_pytest_commands(env)) == 2 and not any("--collect-only" in ln for ln in env.lines)
        info = next(m for m in env.sent if m["type"] == "step_info")["data"]["split"]
        assert (info["part"], info["tests"], info["of"]) == (part, 3 - part, 3)
    assert got[1] == [(1, [("test_ok", "passed"), ("test_broken", "failed")]), (2, [("test_broken", "failed")])]
    # the rerun runs the share the first run picked: picked again from its one failed test, part 2
    # of 2 would be empty
    assert got[2] == [(1, [("test_flaky", "failed")]), (2, [("test_flaky", "passed")])]


async def test_pytest_parts_with_xdist_workers_run_each_test_once(env: Env) -> None:
    # every xdist worker collects and picks the same share; the first to finish writes the file
    env.write(
        "proj/tests/test_x.py", "import pytest\n\n@pytest.mark.parametrize('n', range(6))\ndef test_n(n):\n    pass\n"
    )
    seen = []
    for part in (1, 2):
        env.sent.clear()
        fields = {"params": "tests -n 2 -p no:cacheprovider", "cwd": "proj", "pytest_exe": PYTEST}
        out = await env.run("pytest", fields, {"split": {"part": part, "parts": 2, "durations": {}}})
        assert out.result == "passed", (out, env.lines[-5:])
        seen += [r[0] for r in env.results()]
        info = next(m for m in env.sent if m["type"] == "step_info")["data"]["split"]
        assert (info["tests"], info["of"]) == (3, 6)
    assert sorted(seen) == sorted(f"tests.test_x::test_n[{i}]" for i in range(6))


async def test_pytest_part_with_an_empty_share_passes(env: Env) -> None:
    env.write("proj/tests/test_t.py", "def test_one():\n    pass\n\ndef test_two():\n    pass\n")
    durations = {"tests.test_t::test_one": 2.0, "tests.test_t::test_two": 1.0}
    fields = {"params": "tests", "cwd": "proj", "pytest_exe": PYTEST}
    out = await env.run("pytest", fields, {"split": {"part": 3, "parts": 3, "durations": durations}})
    assert out.result == "passed" and out.message == "no tests were collected", (out, env.lines[-5:])
    assert env.results() == []
    info = next(m for m in env.sent if m["type"] == "step_info")["data"]["split"]
    assert info == {"part": 3, "parts": 3, "tests": 0, "of": 2, "expected_seconds": 0.0}
    assert any("part 3 of 3: 0 of 2 tests (0 with a history, 0.0s expected)" in ln for ln in env.lines)


async def test_pytest_part_that_ran_without_picking_its_share_is_an_error(env: Env) -> None:
    # a "pytest" that reports a passed test but never loads plugins: every part would run everything
    fake = env.write("fake_pytest.py", FAKE_PYTEST)
    fields = {"params": "tests", "pytest_exe": f"{sys.executable} {fake}"}
    out = await env.run("pytest", fields, {"split": {"part": 1, "parts": 2, "durations": {}}})
    assert out.result == "error" and "did not pick this part's share" in (out.message or ""), out
    # figures the job's code wrote are checked: too long, or not the figures
    for summary, why in (("x" * 5000, "more than 4096 bytes"), ('{"tests": "many"}', "ValueError")):
        out = await env.run(
            "pytest",
            {**fields, "env": {"FAKE_SUMMARY": summary}},
            {"split": {"part": 1, "parts": 2, "durations": {}}},
        )
        assert out.result == "error" and why in (out.message or ""), out


FAKE_PYTEST = """
import os
import sys
report = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--junitxml="))
with open(report, "w") as f:
    f.write('<testsuite><testcase classname="tests.test_t" name="test_one" time="0.1"/></testsuite>')
if "FAKE_SUMMARY" in os.environ:
    with open(os.environ["KK_SPLIT_SUMMARY"], "w") as f:
        f.write(os.environ["FAKE_SUMMARY"])
"""


async def test_shell_steps_read_their_share_from_kk_tests_file(env: Env) -> None:
    listing = "printf 'a\\nb\\nc\\nd\\ne\\n'"
    got = []
    for part in (1, 2):
        env.lines.clear()
        split = {"part": part, "parts": 2, "durations": {"e": 5.0}, "tests_list": listing}
        out = await env.run("shell", {"cmd": "cat $KK_TESTS_FILE"}, {"split": split})
        assert out.result == "passed", (out, env.lines)
        got.append([ln for ln in env.lines if len(ln) == 1])
    assert got == [["b", "d", "e"], ["a", "c"]]  # e (5 s) first, then the others spread by count
    split = {"part": 1, "parts": 2, "durations": {}, "tests_list": "exit 3"}
    out = await env.run("shell", {"cmd": "cat $KK_TESTS_FILE"}, {"split": split})
    assert out.result == "error" and "tests_list command failed (exit code 3)" in (out.message or "")
