"""Stage code means what it says, with a real server and real agent processes (SQLite and PostgreSQL):
stopping rules, every ``when``, ``attempts``, the stage ``timeout``, labels, manual stages, refusals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import Api
from tests.support.procs import Proc, Server, start_agent, wait_agent_connected

pytestmark = pytest.mark.e2e

ENV = '"environments": [{"system": "any"}]'

BUILD = """
def stage(ctx):
    return {"jobs": [
        {"name": "compile", "steps": [
            {"tool": "shell", "cmd": "echo compiling; exit 3"},
            {"tool": "shell", "cmd": "echo AFTER-FAILURE"},
            {"tool": "shell", "cmd": "echo CLEANUP", "when": "always"},
        ], ENV},
        {"name": "lint", "steps": [{"tool": "shell", "cmd": "true"}], ENV},
    ]}
""".replace("ENV", ENV)

UNIT = """
def stage(ctx):
    return {"jobs": [{"name": "unit", "steps": [
        {"tool": "shell", "script": "cat > report.xml <<'EOF'\\nXML\\nEOF\\n"},
        {"tool": "junit_collect", "file_glob": "report.xml"},
    ], ENV}]}
""".replace("ENV", ENV).replace(
    "XML",
    '<testsuite name=\\"s\\" tests=\\"2\\"><testcase classname=\\"t\\" name=\\"ok\\"/>'
    '<testcase classname=\\"t\\" name=\\"bad\\"><failure message=\\"no\\"/></testcase></testsuite>',
)


def child(parent: str, manual: bool = False, cmd: str = "true") -> str:
    triggers = ', "triggers": {"manual": True}' if manual else ""
    return f"""
def stage(ctx):
    return {{"parent": "{parent}"{triggers}, "jobs": [{{"name": "j", "steps": [{{"tool": "shell", "cmd": "{cmd}"}}],
            {ENV}}}]}}
"""


@pytest.fixture
def agent(tmp_path: Path, server: Server) -> Iterator[Proc]:
    proc = start_agent(tmp_path, server.url, "a1")
    wait_agent_connected(proc)
    yield proc
    proc.stop()


async def setup(api: Api, stages: dict[str, str]) -> int:
    _, branch_id = await api.project_with_branch()
    for name, code in stages.items():
        await api.stage(branch_id, name, code)
    return branch_id


def runs(flow: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(r["stage_name"], r["result"]) for r in flow["runs"]]


async def test_a_step_that_fails_stops_the_children_and_failed_tests_do_not(api: Api, agent: Proc) -> None:
    branch_id = await setup(
        api,
        {
            "build": BUILD,
            "test": child("build"),
            "publish": child("build", manual=True),
            "unit": UNIT,
            "report": child("unit"),
        },
    )
    flow = await api.wait_flow((await api.flow(branch_id))["id"])
    assert runs(flow) == [("build", "failed"), ("unit", "failed"), ("report", "passed")]
    assert flow["result"] == "failed" and flow["manual_stages"] == []
    build = flow["runs"][0]
    skipped = {s["stage_name"]: s for s in flow["skipped_stages"]}
    assert sorted(skipped) == ["publish", "test"]
    for entry in skipped.values():
        assert entry["run_id"] == build["id"]
        assert entry["reason"] == "stage 'build' had jobs that did not pass: 'compile' failed"
    jobs = {j["name"]: j for j in await api.jobs(build["id"])}
    assert jobs["lint"]["result"] == "passed" and jobs["compile"]["result"] == "failed"
    assert [s["result"] for s in jobs["compile"]["steps"]] == ["failed", "skipped", "passed"]
    log = await api.log(jobs["compile"]["id"])
    assert "compiling" in log and "CLEANUP" in log and "AFTER-FAILURE" not in log
    [unit] = await api.jobs(flow["runs"][1]["id"])
    assert unit["result"] == "passed" and (unit["tests_total"], unit["tests_failed"]) == (2, 1)


WHEN = """
def stage(ctx):
    return {"jobs": [{"name": "w", "steps": [
        {"tool": "shell", "cmd": "echo S0"},
        {"tool": "shell", "cmd": "echo NEVER", "when": "never"},
        {"tool": "shell", "cmd": "echo IS-CI", "when": "is_ci"},
        {"tool": "shell", "cmd": "echo IS-DEV", "when": "is_dev"},
        {"tool": "shell", "cmd": "echo ANY-ERROR-EARLY", "when": "was_any_error"},
        {"tool": "shell", "cmd": "echo PREV-OK-AFTER-SKIP", "when": "prev_ok"},
        {"tool": "shell", "script": FLAKY % ("three", 2), "attempts": 3, "sleep_time_after_attempt": 0.2},
        {"tool": "shell", "script": FLAKY % ("two", 2), "attempts": 2},
        {"tool": "shell", "cmd": "echo PREV-OK-AFTER-FAILURE", "when": "prev_ok"},
        {"tool": "shell", "cmd": "echo DEFAULT-AFTER-FAILURE"},
        {"tool": "shell", "cmd": "echo PREV-OK-AFTER-SKIP-2", "when": "prev_ok"},
        {"tool": "shell", "cmd": "echo ANY-ERROR", "when": "was_any_error"},
        {"tool": "shell", "cmd": "echo NO-ERROR", "when": "was_no_error"},
        {"tool": "shell", "cmd": "echo ALWAYS", "when": "always"},
    ], "environments": [{"system": "any"}]}]}
"""
# fails its first N runs (counted in a file per flow kind), then passes
FLAKY = (
    '"f=COUNTERS/%s-" + ctx.flow_kind + "\\nn=$(cat $f 2>/dev/null || echo 0)\\necho $((n+1)) > $f\\n'
    'echo try $((n+1))\\ntest $n -ge %d\\n"'
)


async def test_every_when_condition_and_attempts(tmp_path: Path, api: Api, agent: Proc) -> None:
    counters = tmp_path / "counters"
    counters.mkdir()
    code = WHEN.replace("FLAKY % (", "(" + FLAKY.replace("COUNTERS", str(counters)) + ") % (")
    branch_id = await setup(api, {"w": code})
    expected = {
        "ci": [
            "passed",
            "skipped",
            "passed",
            "skipped",
            "skipped",
            "passed",
            "passed",
            "failed",
            "skipped",
            "skipped",
            "passed",
            "passed",
            "skipped",
            "passed",
        ],
        "dev": [
            "passed",
            "skipped",
            "skipped",
            "passed",
            "skipped",
            "passed",
            "passed",
            "failed",
            "skipped",
            "skipped",
            "passed",
            "passed",
            "skipped",
            "passed",
        ],
    }
    for kind in ("ci", "dev"):
        flow = await api.wait_flow((await api.flow(branch_id, kind=kind))["id"])
        assert runs(flow) == [("w", "failed")], kind
        [job] = await api.jobs(flow["runs"][0]["id"])
        assert [s["result"] for s in job["steps"]] == expected[kind], kind
        assert [s["when"] for s in job["steps"]][:2] == ["was_no_error", "never"]
        assert job["result"] == "failed" and "(after 2 attempts)" in job["reason"]
        retried, exhausted = job["steps"][6], job["steps"][7]
        assert retried["result"] == "passed" and exhausted["message"].endswith("(after 2 attempts)")
        log = await api.log(job["id"])
        for marker in ("--- attempt 1/3 ---", "--- attempt 3/3 ---", "try 3", "--- attempt 2/2 ---"):
            assert marker in log, (kind, marker)
        assert ("IS-CI" in log) == (kind == "ci") and ("IS-DEV" in log) == (kind == "dev")
        for absent in ("NEVER", "ANY-ERROR-EARLY", "PREV-OK-AFTER-FAILURE", "DEFAULT-AFTER-FAILURE", "NO-ERROR"):
            assert absent not in log, (kind, absent)
        for present in ("S0", "PREV-OK-AFTER-SKIP", "PREV-OK-AFTER-SKIP-2", "ANY-ERROR", "ALWAYS"):
            assert present in log, (kind, present)


SLOW = """
def stage(ctx):
    return {
        "parameters": [{"name": "word", "type": "string", "default": "x"}],
        "flow_label": "release-#{word}",
        "run_label": "run-#{word}",
        "timeout": 3,
        "jobs": [
            {"name": "slow", "steps": [{"tool": "shell", "cmd": "sleep 120"}], ENV},
            {"name": "quick", "steps": [{"tool": "shell", "cmd": "true"}], ENV},
        ],
    }
""".replace("ENV", ENV)


async def test_stage_timeout_ends_the_runs_jobs_and_labels_are_interpolated(api: Api, agent: Proc) -> None:
    branch_id = await setup(api, {"slow": SLOW, "next": child("slow")})
    flow = await api.flow(branch_id, args={"word": "pear"})
    assert flow["label"] == "release-pear" and flow["runs"][0]["label"] == "run-pear"
    assert flow["runs"][0]["deadline"] is not None
    flow = await api.wait_flow(flow["id"], timeout=60)
    assert runs(flow) == [("slow", "timeout")] and flow["result"] == "timeout"
    assert flow["label"] == "release-pear"
    assert flow["skipped_stages"][0]["stage_name"] == "next"
    jobs = {j["name"]: j for j in await api.jobs(flow["runs"][0]["id"])}
    # one agent: 'slow' runs, 'quick' waits behind it; the time limit ends both
    for job in jobs.values():
        assert job["result"] == "timeout" and "the run's time limit of 3 s passed" in job["reason"], job
    assert jobs["slow"]["steps"][0]["result"] == "timeout" and jobs["quick"]["steps"][0]["result"] == "skipped"
    listed = await api.get(f"/branches/{branch_id}/flows")
    assert listed["items"][0]["label"] == "release-pear"


async def test_manual_stages_wait_for_a_person_and_reopen_the_flow(api: Api, agent: Proc) -> None:
    branch_id = await setup(
        api,
        {
            "build": child("root"),
            "deploy": child("build", manual=True, cmd="echo DEPLOYED"),
            "verify": child("deploy"),
            "hotfix": child("root", manual=True),
        },
    )
    flow = await api.wait_flow((await api.flow(branch_id))["id"])
    assert runs(flow) == [("build", "passed")] and flow["result"] == "passed"
    assert sorted(flow["manual_stages"]) == ["deploy", "hotfix"]

    run = await api.post(f"/flows/{flow['id']}/runs", {"stage_name": "deploy"}, expect=201)
    assert run["stage_name"] == "deploy" and run["flow_id"] == flow["id"]
    reopened = await api.get(f"/flows/{flow['id']}")
    assert reopened["manual_stages"] == ["hotfix"] and reopened["result"] in (None, "passed")
    # reopened, unless deploy and verify already ran to the end
    assert reopened["state"] == "running" or len(reopened["runs"]) == 3
    flow = await api.wait_flow(flow["id"])
    assert runs(flow) == [("build", "passed"), ("deploy", "passed"), ("verify", "passed")]
    assert flow["result"] == "passed" and flow["manual_stages"] == ["hotfix"]
    assert "DEPLOYED" in await api.log((await api.jobs(flow["runs"][1]["id"]))[0]["id"])

    again = await api.http.post(f"/flows/{flow['id']}/runs", json={"stage_name": "deploy"})
    assert again.status_code == 409 and "already has a run" in again.json()["detail"]
    unknown = await api.http.post(f"/flows/{flow['id']}/runs", json={"stage_name": "nope"})
    assert unknown.status_code == 422 and "no stage 'nope'" in unknown.json()["detail"]
    missing = await api.http.post(f"/flows/{flow['id']}/runs", json={})
    assert missing.status_code == 422


REFUSED: list[tuple[str, str, str]] = [  # (extra step keys, extra stage keys, the path the 422 names)
    ('"when": "on_failure"', "", "jobs[0].steps[1].when"),
    ('"when": "prev_ok and is_ci"', "", "jobs[0].steps[1].when"),
    ('"when": 3', "", "jobs[0].steps[1].when"),
    ('"attempts": 0', "", "jobs[0].steps[1].attempts"),
    ('"attempts": "3"', "", "jobs[0].steps[1].attempts"),
    ('"sleep_time_after_attempt": -1', "", "jobs[0].steps[1].sleep_time_after_attempt"),
    ("", '"timeout": 0,', "timeout"),
    ("", '"flow_label": 7,', "flow_label"),
    ("", '"run_label": ["x"],', "run_label"),
]


async def test_bad_step_and_stage_keys_are_refused_with_their_key_path(api: Api) -> None:
    _, branch_id = await api.project_with_branch()
    for step_keys, stage_keys, path in REFUSED:
        step_keys = f", {step_keys}" if step_keys else ""
        code = f"""
def stage(ctx):
    return {{{stage_keys} "jobs": [{{"name": "j", "steps": [{{"tool": "shell", "cmd": "true"}},
             {{"tool": "shell", "cmd": "true"{step_keys}}}], {ENV}}}]}}
"""
        r = await api.http.post(f"/branches/{branch_id}/stages", json={"name": "s", "schema_code": code})
        assert r.status_code == 422, (step_keys, stage_keys, r.text)
        detail = r.json()["detail"]
        assert detail["path"] == path, detail
        if "when" in path:
            assert "was_no_error" in detail["message"], detail
    flow = await api.flow(branch_id)  # nothing was stored
    assert flow["runs"] == [] and flow["state"] == "completed"
