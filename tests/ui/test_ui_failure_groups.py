"""Failures grouped by cause through a real server and its local agent running pytest: flow 1
fails three tests with one cause (differing only by ports, addresses and temp dirs), flow 2 fails
them again and two more with a new cause; the API and the results page's grouped view tell the
known cause (linked to flow 1) from the new one."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.gitrepo import commit, make_repo
from tests.ui.conftest import Kraken, login
from tests.ui.test_ui_results import STAGE, results_ready, run_flow

pytestmark = pytest.mark.e2e

LIB = """import tempfile


class Conn:
    pass


def connect(port):
    raise ConnectionError(f"cannot reach 127.0.0.1:{port} with {Conn()!r} in {tempfile.mkdtemp()}")


def ratio(a, b):
    return a / b
"""

TESTS = """from lib import connect, ratio


def test_connect_a():
    connect(8001)


def test_connect_b():
    connect(9002)


def test_connect_c():
    connect(31337)


def test_fine():
    assert True
"""

MORE = """

def test_ratio_1():
    ratio(1, 0)


def test_ratio_2():
    ratio(7, 0)
"""


def test_failures_by_cause_known_and_new(page: Page, kraken: Kraken, tmp_path: Path) -> None:
    repo = tmp_path / "net-repo"
    make_repo(repo, {"lib.py": LIB, "tests/test_net.py": TESTS})
    project = kraken.post("/projects", {"name": "net"})
    branch = kraken.post(f"/projects/{project['id']}/branches", {"name": "main", "branch_name": "main"})
    code = STAGE.replace("REPO", str(repo)).replace("PYTHON", sys.executable)
    kraken.post(f"/branches/{branch['id']}/stages", {"name": "tests", "schema_code": code})

    flow1 = run_flow(kraken, branch["id"])
    run1 = flow1["runs"][0]["id"]
    assert results_ready(kraken, run1)["failed"] == 3
    g1 = kraken.get(f"/runs/{run1}/failure-groups")
    assert (g1["failures"], g1["causes"]) == (3, 1), g1
    assert not g1["groups"][0]["known"]

    commit(repo, {"tests/test_net.py": TESTS + MORE}, "divide by zero")
    flow2 = run_flow(kraken, branch["id"])
    run2 = flow2["runs"][0]["id"]
    assert results_ready(kraken, run2)["failed"] == 5
    g2 = kraken.get(f"/runs/{run2}/failure-groups")
    assert (g2["failures"], g2["causes"]) == (5, 2), g2
    conn, ratio = g2["groups"]
    assert conn["key"] == g1["groups"][0]["key"] and conn["count"] == 3
    assert conn["known"] and conn["first_seen"]["run_id"] == run1
    assert ratio["count"] == 2 and not ratio["known"] and ratio["signature"].startswith("ZeroDivisionError")

    login(page)
    page.goto(f"/runs/{run2}/results")
    page.get_by_test_id("view-groups").click()
    page.wait_for_url(re.compile(rf".*/runs/{run2}/results\?view=groups$"))
    expect(page.get_by_test_id("causes-label")).to_contain_text("5 failures, 2 causes")
    groups = page.get_by_test_id("failure-group")
    expect(groups).to_have_count(2)
    expect(groups.nth(0).get_by_test_id("group-test")).to_have_count(3)
    expect(groups.nth(0).get_by_test_id("group-signature")).to_contain_text("ConnectionError")
    expect(groups.nth(0).get_by_test_id("group-known")).to_contain_text("known since flow #1")
    expect(groups.nth(1).get_by_test_id("group-new")).to_be_visible()
    expect(groups.nth(1)).to_contain_text("test_ratio_1")
    # the known cause links to the run where it first appeared
    groups.nth(0).get_by_test_id("group-first-seen").click()
    page.wait_for_url(re.compile(rf".*/runs/{run1}/results\?view=groups$"))
    expect(page.get_by_test_id("causes-label")).to_contain_text("3 failures, 1 cause")
    expect(page.get_by_test_id("group-new")).to_be_visible()
    # a test of a group opens its history
    page.get_by_test_id("group-test").first.get_by_role("link").click()
    page.wait_for_url(re.compile(r".*/test-cases/\d+\?branch=\d+$"))
