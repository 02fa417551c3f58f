"""What a killed agent leaves behind on its host, and the retention of job directories.

The direct executor records each running job in ``<data_dir>/job-records/<job_id>`` (mode
0600): the job's marker (``KK_JOB_MARKER`` in every step's environment) and, for each command,
its process group with the group leader's start time.  A job that ends normally removes its
record.  A record still there when an agent starts belongs to a job its earlier self was running
when it was killed (``kill -9``, a crash, a power cut): ``clean_up_after_earlier_run`` kills that
job's processes (every process carrying the marker, every process still in a recorded group that
started no earlier than the group's leader, so a recycled group id is never hit) and removes the
job's directories.

Retention (``kraken agent --keep-workdirs N`` / ``KRAKEN_KEEP_WORKDIRS``): 0, the default,
removes a job's directory (and the job user's ``HOME`` for it) when the job ends; N > 0 keeps
the directories of the last N ended jobs for debugging and removes older ones.  At start-up the
same rule applies to what is in ``<data_dir>/jobs``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from kraken.agent.executors.job_user import kill_marked

log = logging.getLogger(__name__)

RECORDS = "job-records"
JOBS = "jobs"
HOME_SUFFIX = "-home"

_keep_workdirs = 0


def set_keep_workdirs(n: int) -> None:
    """Keep the directories of the last ``n`` ended jobs (0: remove each when its job ends)."""
    global _keep_workdirs
    if n < 0:
        raise ValueError(f"--keep-workdirs must be 0 or more, not {n}")
    _keep_workdirs = n


def keep_workdirs() -> int:
    return _keep_workdirs


# ---------------------------------------------------------------- records of running jobs


def _record_path(data_dir: Path, job_id: int) -> Path:
    return data_dir / RECORDS / str(job_id)


def record_job(data_dir: Path, job_id: int, marker: str) -> None:
    """Note that ``job_id`` runs here with ``marker`` (before any of its processes starts)."""
    d = data_dir / RECORDS
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(_record_path(data_dir, job_id), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{marker}\n")


def record_group(data_dir: Path, job_id: int, pgid: int) -> None:
    """Add a process group the job started (its leader ``pgid`` is alive right now)."""
    start = start_time(pgid)
    if start is None:
        return  # already gone
    with contextlib.suppress(FileNotFoundError), open(_record_path(data_dir, job_id), "a") as fh:
        fh.write(f"{pgid} {start}\n")


def forget_job(data_dir: Path, job_id: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        _record_path(data_dir, job_id).unlink()


@dataclass
class _Record:
    job_id: int
    marker: str
    groups: list[tuple[int, int]]


def _read_records(data_dir: Path) -> list[_Record]:
    d = data_dir / RECORDS
    if not d.is_dir():
        return []
    out: list[_Record] = []
    for path in d.iterdir():
        try:
            job_id = int(path.name)
            lines = path.read_text().splitlines()
        except (ValueError, OSError):
            log.warning("ignoring %s: not a job record", path)
            continue
        groups: list[tuple[int, int]] = []
        for line in lines[1:]:
            with contextlib.suppress(ValueError):
                pgid, start = line.split()
                groups.append((int(pgid), int(start)))
        out.append(_Record(job_id, lines[0].strip() if lines else "", groups))
    return out


# ---------------------------------------------------------------- processes


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (field 3 onwards)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            text = fh.read()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (``/proc/<pid>/stat`` field 22)."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def kill_groups(groups: list[tuple[int, int]]) -> int:
    """Kill every process in one of ``groups`` (pgid, leader's start time) that started no
    earlier than that leader: the group's own processes, never a later owner of a recycled id."""
    if not groups:
        return 0
    wanted = dict(groups)
    killed = 0
    for _ in range(5):  # what forks during a pass is found by the next
        found = 0
        with os.scandir("/proc") as entries:
            for entry in entries:
                if not entry.name.isdigit():
                    continue
                pid = int(entry.name)
                fields = _stat_fields(pid)
                if not fields or len(fields) <= 19 or fields[0] == "Z":
                    continue
                pgid, started = int(fields[2]), int(fields[19])
                if pgid in wanted and started >= wanted[pgid] and pid != os.getpid():
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
                        found += 1
        killed += found
        if not found:
            break
    return killed


# ---------------------------------------------------------------- directories


def remove_job_dirs(data_dir: Path, job_id: int) -> None:
    jobs = data_dir / JOBS
    shutil.rmtree(jobs / str(job_id), True)
    shutil.rmtree(jobs / f"{job_id}{HOME_SUFFIX}", True)


def prune_workdirs(data_dir: Path, keep: int, running: frozenset[int] = frozenset()) -> list[int]:
    """Remove the job directories in ``<data_dir>/jobs`` beyond the ``keep`` most recently
    changed ones (never those of ``running`` jobs); the ids removed."""
    jobs = data_dir / JOBS
    if not jobs.is_dir():
        return []
    ended: dict[int, float] = {}
    for entry in jobs.iterdir():
        name = entry.name.removesuffix(HOME_SUFFIX)
        if not name.isdigit() or int(name) in running:
            continue
        with contextlib.suppress(OSError):
            mtime = entry.lstat().st_mtime
            ended[int(name)] = max(ended.get(int(name), 0.0), mtime)
    newest_first = sorted(ended, key=lambda j: (ended[j], j), reverse=True)
    removed = newest_first[keep:]
    for job_id in removed:
        remove_job_dirs(data_dir, job_id)
    return removed


def job_ended(data_dir: Path, job_id: int) -> None:
    """A job of the direct executor ended (its processes are killed): apply the retention."""
    forget_job(data_dir, job_id)
    keep = keep_workdirs()
    if keep == 0:
        remove_job_dirs(data_dir, job_id)
    else:
        prune_workdirs(data_dir, keep)


@dataclass
class CleanupReport:
    jobs: list[int]  # jobs an earlier run was running when it died
    killed: int  # processes killed
    removed: list[int]  # job directories removed


def clean_up_after_earlier_run(data_dir: Path) -> CleanupReport:
    """At an agent's start (before it takes a job): kill what the jobs of its earlier self left
    running, remove those jobs' directories, and apply the retention to the others."""
    records = _read_records(data_dir)
    killed = 0
    for rec in records:
        if rec.marker:
            killed += kill_marked(rec.marker)
        killed += kill_groups(rec.groups)
        remove_job_dirs(data_dir, rec.job_id)
        forget_job(data_dir, rec.job_id)
    removed = sorted({r.job_id for r in records} | set(prune_workdirs(data_dir, keep_workdirs())))
    report = CleanupReport(jobs=sorted(r.job_id for r in records), killed=killed, removed=removed)
    if report.jobs or report.removed:
        log.warning(
            "cleaned up after an earlier run of the agent: jobs %s were running (killed %d process(es)); "
            "removed the directories of jobs %s",
            report.jobs,
            report.killed,
            report.removed,
        )
    return report
