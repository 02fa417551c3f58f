import { Link } from "wouter";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { client, unwrap } from "../api/client";
import type { Job, Step } from "../api/types";
import { Elapsed, StatusBadge, outcome } from "./ui";
import { qk } from "../lib/queryKeys";

export function StepPips({ steps }: { steps: Step[] }) {
  return (
    <span className="pips" aria-label="steps">
      {steps.map((s) => {
        const o = outcome(s.state, s.result);
        return <span key={s.index} className={`pip st-${o}`} title={`${s.index + 1}. ${s.name || s.tool}: ${o}${s.message ? ` — ${s.message}` : ""}`} />;
      })}
    </span>
  );
}

export function useJobActions(job: Job) {
  const qc = useQueryClient();
  const done = (j: Job) => {
    qc.setQueryData(qk.job(j.id), j);
    void qc.invalidateQueries({ queryKey: qk.jobs(j.run_id) });
  };
  const cancel = useMutation({
    mutationFn: () => unwrap(client.POST("/api/jobs/{job_id}/cancel", { params: { path: { job_id: job.id } } })),
    onSuccess: done,
  });
  const rerun = useMutation({
    mutationFn: () => unwrap(client.POST("/api/jobs/{job_id}/rerun", { params: { path: { job_id: job.id } } })),
    onSuccess: done,
  });
  return { cancel, rerun };
}

function JobRow({ job }: { job: Job }) {
  const { cancel, rerun } = useJobActions(job);
  const err = cancel.error ?? rerun.error;
  return (
    <tr className={job.covered ? "covered" : ""}>
      <td>
        <Link href={`/jobs/${job.id}`} className="strong">
          {job.name}
        </Link>
        {job.config_name && <span className="chip">{job.config_name}</span>}
        {job.rerun_of && <span className="chip" title={`rerun of job ${job.rerun_of}`}>rerun</span>}
        {job.covered && <span className="chip" title="replaced by a rerun">replaced</span>}
        {job.reason && <div className="muted small">{job.reason}</div>}
        {err && <div className="form-error small">{err.message}</div>}
      </td>
      <td>
        <StatusBadge state={job.state} result={job.result} />
      </td>
      <td>
        <StepPips steps={job.steps ?? []} />
      </td>
      <td>{job.agent_name ?? <span className="muted">{job.state === "queued" ? "waiting" : "–"}</span>}</td>
      <td className="mono small">{job.system}</td>
      <td className="mono small">{job.executor}</td>
      <td className="num">{job.tests_total ? `${job.tests_total - job.tests_failed}/${job.tests_total}` : <span className="muted">–</span>}</td>
      <td>
        <Elapsed start={job.started} end={job.finished} />
      </td>
      <td className="row-actions">
        <Link href={`/jobs/${job.id}`} className="btn small">
          Log
        </Link>
        {job.state !== "completed" ? (
          <button className="btn small danger" disabled={cancel.isPending} onClick={() => cancel.mutate()}>
            Cancel
          </button>
        ) : (
          !job.covered && (
            <button className="btn small" disabled={rerun.isPending} onClick={() => rerun.mutate()}>
              Rerun
            </button>
          )
        )}
      </td>
    </tr>
  );
}

export function JobsTable({ jobs }: { jobs: Job[] }) {
  return (
    <div className="table-wrap">
      <table className="table jobs-table" data-testid="jobs-table">
        <thead>
          <tr>
            <th>Job</th>
            <th>State</th>
            <th>Steps</th>
            <th>Agent</th>
            <th>System</th>
            <th>Executor</th>
            <th className="num">Tests</th>
            <th>Duration</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {jobs.map((j) => (
            <JobRow key={j.id} job={j} />
          ))}
        </tbody>
      </table>
    </div>
  );
}
