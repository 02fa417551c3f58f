import { useEffect, useMemo, useState, useSyncExternalStore } from "react";
import { Link } from "wouter";
import { useBranch, useFlow, useJob, useProject, useRun } from "../api/queries";
import type { Step } from "../api/types";
import { useJobActions } from "../components/JobsTable";
import { LogView } from "../components/LogView";
import { PageHeader } from "../components/Layout";
import { Elapsed, ErrorBox, FormError, Kv, Skeleton, StatusBadge, outcome, useTitle } from "../components/ui";
import { streamUrl } from "../lib/auth";
import { formatDateTime, formatSeconds } from "../lib/format";
import { LogStore, streamLog } from "../lib/logStore";

function StepsList({ steps, store, onJump }: { steps: Step[]; store: LogStore; onJump: (line: number) => void }) {
  useSyncExternalStore((l) => store.subscribe(l), store.getVersion);
  return (
    <ol className="steps" data-testid="steps">
      {steps.map((s) => {
        const o = outcome(s.state, s.result);
        const start = store.stepStarts.get(s.index);
        return (
          <li key={s.index} className={`step st-${o}`}>
            <span className={`pip st-${o}`} aria-hidden />
            <span className="step-name">
              {start !== undefined ? (
                <button className="link" onClick={() => onJump(start)} title="Show in the log">
                  {s.name || s.tool}
                </button>
              ) : (
                s.name || s.tool
              )}
              {s.name && <span className="muted small mono"> {s.tool}</span>}
              {stepSummary(s) && <div className="step-cmd mono" title={stepSummary(s)}>{stepSummary(s)}</div>}
            </span>
            <span className="muted small">{o}</span>
            <span className="num small">{s.started ? <Elapsed start={s.started} end={s.finished} /> : ""}</span>
            {s.exit_code !== null && s.exit_code !== 0 && <span className="chip">exit {s.exit_code}</span>}
            {s.message && <div className="step-msg">{s.message}</div>}
          </li>
        );
      })}
    </ol>
  );
}

/** What a step does, in one line: its command, checkout, selection... */
function stepSummary(s: Step): string {
  const f = s.fields ?? {};
  for (const key of ["cmd", "checkout", "params", "file_glob", "script"]) {
    const v = f[key];
    if (typeof v === "string" && v) return v;
    if (Array.isArray(v) && v.length) return v.join(" ");
  }
  return "";
}

function lineFromHash(): number | null {
  const m = /^#L(\d+)$/.exec(window.location.hash);
  return m ? Math.max(0, Number(m[1]) - 1) : null;
}

export default function JobPage({ id }: { id: number }) {
  const job = useJob(id);
  const j = job.data;
  const run = useRun(j?.run_id);
  const flow = useFlow(run.data?.flow_id);
  const branch = useBranch(flow.data?.branch_id);
  const project = useProject(branch.data?.project_id);
  useTitle(j ? `Job ${j.name}` : "Job");
  const store = useMemo(() => new LogStore(), [id]); // eslint-disable-line react-hooks/exhaustive-deps
  const [streamState, setStreamState] = useState<string>("streaming");
  const [jump, setJump] = useState<{ line: number; n: number } | null>(null);
  const initialLine = useMemo(() => lineFromHash(), [id]); // eslint-disable-line react-hooks/exhaustive-deps
  const { cancel, rerun } = useJobActions(j ?? ({ id, run_id: 0 } as never));

  useEffect(() => {
    const h = streamLog((after) => streamUrl(`/api/jobs/${id}/log/stream?after=${after}`, "events"), store, setStreamState);
    return () => h.close();
  }, [id, store]);

  if (job.isError) return <ErrorBox error={job.error} retry={() => job.refetch()} />;
  if (!j) return <Skeleton rows={10} />;
  const running = j.state !== "completed";
  const f = flow.data;
  return (
    <>
      <PageHeader
        crumbs={[
          { label: "Projects", href: "/" },
          { label: project.data?.name ?? "…" },
          { label: branch.data?.name ?? "…", href: f ? `/branches/${f.branch_id}` : undefined },
          { label: f ? `flow ${f.kind.toUpperCase()} #${f.seq}` : "…", href: f ? `/flows/${f.id}` : undefined },
          { label: run.data?.stage_name ?? "…", href: f ? `/flows/${f.id}?run=${j.run_id}` : undefined },
        ]}
        title={
          <>
            {j.name} {j.config_name && <span className="chip">{j.config_name}</span>} <StatusBadge state={j.state} result={j.result} />
          </>
        }
        actions={
          <>
            {j.tests_total > 0 && (
              <Link className="btn" href={`/runs/${j.run_id}/results?job=${j.id}`}>
                Test results
              </Link>
            )}
            {running ? (
              <button className="btn danger" onClick={() => cancel.mutate()} disabled={cancel.isPending}>
                Cancel job
              </button>
            ) : (
              !j.covered && (
                <button className="btn" onClick={() => rerun.mutate()} disabled={rerun.isPending}>
                  ↻ Rerun job
                </button>
              )
            )}
          </>
        }
      >
        <FormError error={cancel.error ?? rerun.error} />
        {rerun.data && (
          <div className="notice">
            Rerun started: <Link href={`/jobs/${rerun.data.id}`}>job {rerun.data.id}</Link>
          </div>
        )}
        {j.reason && <div className="reason">{j.reason}</div>}
      </PageHeader>
      <div className="job-layout">
        <aside className="card job-side">
          <Kv
            items={[
              ["Agent", j.agent_name ?? (j.state === "queued" ? "waiting for an agent" : "–")],
              ["System", <span key="s" className="mono">{j.system}</span>],
              ["Executor", <span key="e" className="mono">{j.executor}</span>],
              ["Agents group", <span key="g" className="mono">{j.agents_group}</span>],
              ["Timeout", formatSeconds(j.timeout)],
              ["Created", formatDateTime(j.created)],
              ["Started", formatDateTime(j.started)],
              ["Finished", formatDateTime(j.finished)],
              ["Duration", <Elapsed key="d" start={j.started} end={j.finished} />],
              ["Tests", j.tests_total ? `${j.tests_total - j.tests_failed} / ${j.tests_total} passed` : "–"],
            ]}
          />
          <h3>Steps</h3>
          {j.steps && j.steps.length ? <StepsList steps={j.steps} store={store} onJump={(line) => setJump({ line, n: Date.now() })} /> : <p className="muted">The steps appear when the job starts.</p>}
        </aside>
        <section className="job-log">
          <LogView
            store={store}
            running={running}
            streamState={streamState}
            downloadUrl={() => streamUrl(`/api/jobs/${id}/log`, "download")}
            downloadName={`kraken-job-${id}.log`}
            initialLine={initialLine}
            height="calc(100vh - 230px)"
            jumpTo={jump}
          />
        </section>
      </div>
    </>
  );
}
