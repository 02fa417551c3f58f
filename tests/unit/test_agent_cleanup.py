"""Retention of the direct executor's job directories and the records of running jobs."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from kraken.agent import cleanup


def make_job_dirs(data_dir: Path, job_id: int, age: float) -> None:
    for name in (str(job_id), f"{job_id}-home"):
        d = data_dir / "jobs" / name
        d.mkdir(parents=True)
        (d / "f").write_text("x")
        t = time.time() - age
        os.utime(d, (t, t))


def test_prune_keeps_the_newest_and_never_a_running_job(tmp_path: Path) -> None:
    for job_id, age in ((1, 40), (2, 30), (3, 20), (4, 10)):
        make_job_dirs(tmp_path, job_id, age)
    (tmp_path / "jobs" / "not-a-job").mkdir()
    assert cleanup.prune_workdirs(tmp_path, 1, running=frozenset({1})) == [3, 2]
    left = sorted(p.name for p in (tmp_path / "jobs").iterdir())
    assert left == ["1", "1-home", "4", "4-home", "not-a-job"]


def test_job_ended_removes_by_default_and_keeps_when_asked(tmp_path: Path) -> None:
    make_job_dirs(tmp_path, 7, 5)
    cleanup.record_job(tmp_path, 7, "m")
    cleanup.job_ended(tmp_path, 7)
    assert not (tmp_path / "jobs" / "7").exists() and not (tmp_path / "job-records" / "7").exists()
    try:
        cleanup.set_keep_workdirs(1)
        make_job_dirs(tmp_path, 8, 20)
        make_job_dirs(tmp_path, 9, 10)
        cleanup.job_ended(tmp_path, 9)
        assert (tmp_path / "jobs" / "9").exists() and not (tmp_path / "jobs" / "8").exists()
    finally:
        cleanup.set_keep_workdirs(0)
    with pytest.raises(ValueError, match="0 or more"):
        cleanup.set_keep_workdirs(-1)


def test_start_up_kills_a_recorded_group_and_removes_its_directory(tmp_path: Path) -> None:
    make_job_dirs(tmp_path, 3, 5)
    cleanup.record_job(tmp_path, 3, "no-process-has-this-marker")
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        cleanup.record_group(tmp_path, 3, proc.pid)
        report = cleanup.clean_up_after_earlier_run(tmp_path)
        assert proc.wait(10) == -9
        assert report.jobs == [3] and report.killed >= 1 and report.removed == [3]
        assert not (tmp_path / "jobs" / "3").exists() and not list((tmp_path / "job-records").iterdir())
    finally:
        proc.kill()


def test_a_recycled_group_id_is_not_killed(tmp_path: Path) -> None:
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        started = cleanup.start_time(proc.pid)
        assert started is not None
        # recorded as a group whose leader started after this process: another owner of the id
        assert cleanup.kill_groups([(proc.pid, started + 1)]) == 0
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
