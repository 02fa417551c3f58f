"""The sample project's repository: a small Python package with a real test suite, a short history,
and the next commits a newcomer can add to see regressions, a culprit, a fix and a flaky test.

``python -m kraken.sample_repo next`` (or ``break`` / ``fix`` / ``flaky``) adds them to the sample
repository of ``kraken serve --sample-project`` (``--repo`` for another one); then start a flow.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

CALC_V1 = '''"""A tiny calculator: what the sample's tests check."""


def add(a: float, b: float) -> float:
    return a + b


def sub(a: float, b: float) -> float:
    return a - b
'''
CALC_V2 = (
    CALC_V1
    + """

def mul(a: float, b: float) -> float:
    return a * b


def div(a: float, b: float) -> float:
    return a / b
"""
)
CALC_BROKEN = CALC_V2.replace("return a / b", "return a // b")

TESTS_V1 = """from calc import add, sub


def test_add():
    assert add(2, 3) == 5


def test_add_negative():
    assert add(-2, -3) == -5


def test_sub():
    assert sub(5, 3) == 2


def test_sub_below_zero():
    assert sub(3, 5) == -2
"""
TESTS_V2 = (
    TESTS_V1.replace("from calc import add, sub", "from calc import add, div, mul, sub")
    + """

def test_mul():
    assert mul(4, 5) == 20


def test_div():
    assert div(8, 2) == 4


def test_div_fraction():
    assert div(1, 4) == 0.25


def test_div_negative():
    assert div(-3, 2) == -1.5
"""
)
FLAKY_TEST = '''import random


def test_sometimes():
    """Flaky on purpose: fails about one run in two."""
    assert random.random() < 0.5
'''

# A fallback when the job's python3 has no pytest: runs the test functions, writes pytest's JUnit XML.
RUNNER = '''"""Run tests/test_*.py without pytest (plain test functions) and write a JUnit XML report."""
import importlib.util, pathlib, sys, time, traceback
from xml.sax.saxutils import quoteattr, escape

cases = []
sys.path.insert(0, ".")
for path in sorted(pathlib.Path("tests").glob("test_*.py")):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for name in sorted(n for n in dir(mod) if n.startswith("test_") and callable(getattr(mod, n))):
        t0 = time.monotonic()
        try:
            getattr(mod, name)()
            failure = ""
        except Exception:
            text = traceback.format_exc()
            failure = "<failure message=%s>%s</failure>" % (quoteattr(text.strip().splitlines()[-1]), escape(text))
        cases.append('<testcase classname="tests.%s" name="%s" time="%.4f">%s</testcase>'
                     % (path.stem, name, time.monotonic() - t0, failure))
pathlib.Path(sys.argv[1]).write_text("<testsuite>%s</testsuite>" % "".join(cases))
'''

BUILD_SH = "#!/bin/sh\nset -e\necho building...\nmkdir -p out\necho 'artifact' > out/app.txt\necho done\n"
README = "# sample\nA tiny repository for Kraken's sample project.\n"

HISTORY: list[tuple[str, dict[str, str]]] = [
    (
        "calc: add and sub, with tests",
        {
            "calc.py": CALC_V1,
            "tests/test_calc.py": TESTS_V1,
            "run_tests.py": RUNNER,
            "build.sh": BUILD_SH,
            "README.md": README,
        },
    ),
    ("calc: mul and div", {"calc.py": CALC_V2, "tests/test_calc.py": TESTS_V2}),
    ("README: how to run the tests", {"README.md": README + "\nRun the tests: `python3 -m pytest tests`.\n"}),
]

# The next commits, in order: (step, [(message, files)]).
NEXT: list[tuple[str, list[tuple[str, dict[str, str]]]]] = [
    (
        "break",
        [
            ("README: the functions", {"README.md": README + "\nFunctions: add, sub, mul, div.\n"}),
            ("div: integer division is faster", {"calc.py": CALC_BROKEN}),
            (
                "build: say when it starts",
                {"build.sh": BUILD_SH.replace("echo building...", "echo building at $(date)")},
            ),
        ],
    ),
    ("fix", [("div: back to true division (fixes test_div_fraction, test_div_negative)", {"calc.py": CALC_V2})]),
    ("flaky", [("tests: a flaky test", {"tests/test_flaky.py": FLAKY_TEST})]),
]
STEPS = [name for name, _ in NEXT]
_GIT_ID = ["-c", "user.name=Kraken", "-c", "user.email=kraken@localhost"]


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(repo), *_GIT_ID, *args], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def _commit(repo: Path, message: str, files: dict[str, str]) -> str:
    for name, text in files.items():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


def make_sample_repo(path: Path) -> None:
    """The repository with its short history (once)."""
    if (path / ".git").exists():
        return
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    for message, files in HISTORY:
        _commit(path, message, files)


def applied_steps(repo: Path) -> list[str]:
    """The next steps already in the repository (by their last commit's message)."""
    messages = set(_git(repo, "log", "--format=%s").splitlines())
    return [name for name, commits in NEXT if commits[-1][0] in messages]


def add_step(repo: Path, step: str | None = None) -> tuple[str, list[str]]:
    """Commit ``step`` (default: the next one not applied yet); returns it and the new commits.

    Raises ValueError for an unknown step, one applied already, or when every step is applied."""
    done = applied_steps(repo)
    if step is None:
        left = [s for s in STEPS if s not in done]
        if not left:
            raise ValueError(f"every step is in the repository already ({', '.join(STEPS)})")
        step = left[0]
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}: one of {', '.join(STEPS)}")
    if step in done:
        raise ValueError(f"step {step!r} is in the repository already")
    commits = dict(NEXT)[step]
    return step, [_commit(repo, message, files) for message, files in commits]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kraken.sample_repo", description=__doc__)
    parser.add_argument("step", nargs="?", default="next", choices=["next", *STEPS])
    parser.add_argument("--repo", type=Path, help="default: the sample repository of kraken serve (KRAKEN_DATA_DIR)")
    args = parser.parse_args(argv)
    repo = args.repo
    if repo is None:
        from kraken.core.config import Settings

        repo = Settings().sample_repo_dir
    if not (repo / ".git").exists():
        print(f"no sample repository at {repo}: start `kraken serve --sample-project` first", file=sys.stderr)
        return 2
    try:
        step, shas = add_step(repo, None if args.step == "next" else args.step)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"added step {step!r} to {repo}: {len(shas)} commit(s), HEAD {shas[-1][:12]}; now start a flow of 'demo'")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
