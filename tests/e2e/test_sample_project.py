"""``kraken serve --sample-project`` with its local agent: the first flow shows test results; the
documented ``python -m kraken.sample_repo`` steps bring two regressions whose culprit is named by
itself (the sample branch finds culprits automatically), then their fix."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kraken.sample_repo import STEPS, add_step, applied_steps, make_sample_repo
from tests.support.api import Api
from tests.support.procs import free_port, kraken

pytestmark = pytest.mark.e2e


def test_sample_repository_steps_with_real_pytest(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_sample_repo(repo)
    log = subprocess.run(["git", "-C", str(repo), "log", "--format=%s"], capture_output=True, text=True, check=True)
    assert len(log.stdout.splitlines()) == 3

    def failing() -> set[str]:
        out = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", "tests"],
            cwd=repo,
            capture_output=True,
            text=True,
        )
        return {line.split("::")[1].split()[0] for line in out.stdout.splitlines() if line.startswith("FAILED")}

    assert failing() == set()
    step, shas = add_step(repo)
    assert step == "break" and len(shas) == 3
    assert failing() == {"test_div_fraction", "test_div_negative"}
    assert add_step(repo)[0] == "fix" and failing() == set()
    assert add_step(repo)[0] == "flaky" and applied_steps(repo) == STEPS
    with pytest.raises(ValueError, match="every step is in the repository already"):
        add_step(repo)
    with pytest.raises(ValueError, match="unknown step 'nope'"):
        add_step(repo, "nope")


async def test_sample_project_first_flow_has_results_and_a_culprit_is_named(tmp_path: Path) -> None:
    port = free_port()
    proc = kraken(
        ["serve", "--port", str(port), "--data-dir", str(tmp_path / "data"), "--sample-project"], tmp_path, "serve"
    )
    agent_dir: Path | None = None
    try:
        line = proc.wait_line(lambda text: "created the sample project 'demo'" in text, timeout=60)
        repo = Path(line.split("(repository ", 1)[1].rstrip(")\n"))
        agent_line = proc.wait_line(lambda text: "local agent started (pid" in text, timeout=60)
        agent_dir = Path(agent_line.split("data dir ", 1)[1].rstrip(")"))
        api = Api(f"http://127.0.0.1:{port}")
        await api.login()
        try:
            branch_id = (await api.get("/projects"))[0]["branches"][0]["id"]
            assert (await api.get(f"/branches/{branch_id}/culprit-settings"))["auto"] is True

            async def flow() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
                done = await api.wait_flow((await api.flow(branch_id))["id"], timeout=180)
                test_run = next(r for r in done["runs"] if r["stage_name"] == "test")

                async def analysed() -> dict[str, Any] | None:
                    page = await api.get(f"/runs/{test_run['id']}/results", params={"limit": 100})
                    return page if page["total"] == 16 else None

                page = await api.wait_until(analysed, 60, "the sample's results")
                return test_run, {f"{r['test']}@{r['job_id']}": r for r in page["items"]}

            _run1, first = await flow()
            assert {r["status"] for r in first.values()} == {"passed"}  # 8 tests in two configs

            shas = add_step(repo, "break")[1]
            run2, second = await flow()
            regressed = {k.split("@")[0] for k, r in second.items() if r["change"] == "regression"}
            assert regressed == {"tests.test_calc::test_div_fraction", "tests.test_calc::test_div_negative"}

            async def found() -> list[dict[str, Any]] | None:
                s = await api.get(f"/runs/{run2['id']}/culprits")
                return s if s and all(x["state"] not in ("pending", "bisecting") for x in s) else None

            searches = await api.wait_until(found, 180, "the sample's culprit")
            assert [(x["state"], x["culprit"]) for x in searches] == [("found", shas[1])], searches
            assert searches[0]["culprit_commit"]["message"] == "div: integer division is faster"
            print(f"BENCH sample culprit: {len(searches[0]['flows'])} bisection flows for a range of 3 commits")

            add_step(repo, "fix")
            _run3, third = await flow()
            assert {k.split("@")[0] for k, r in third.items() if r["change"] == "fix"} == regressed
        finally:
            await api.close()
    finally:
        proc.stop()
        if agent_dir is not None and agent_dir.parent == Path("/var/lib/kraken-agents"):
            shutil.rmtree(agent_dir, ignore_errors=True)
