import { type ReactNode, useMemo } from "react";
import { Link, Redirect, useLocation, useSearch } from "wouter";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { client, unwrap } from "../api/client";
import { useBranch, useFlow, useFlowSummary, useJobs, useProject, useRun, useRunSummary, useStages } from "../api/queries";
import type { Flow, ResultsSummary, RunBrief } from "../api/types";
import { RepoChanges } from "../components/Commits";
import { JobsTable } from "../components/JobsTable";
import { SplitParts } from "../components/SplitParts";
import { PageHeader } from "../components/Layout";
import { StageGraph } from "../components/StageGraph";
import { Elapsed, Empty, ErrorBox, FormError, Kv, Loading, Skeleton, StatusBadge, TimeAgo, useTitle } from "../components/ui";
import { formatCount, formatDateTime, plural } from "../lib/format";
import { triggerText } from "./Branch";
import { qk } from "../lib/queryKeys";

export function Counters({ s, runId }: { s: ResultsSummary; runId?: number }) {
  const items: [string, number, string, string][] = [
    ["total", s.total, "", ""],
    ["passed", s.passed, "st-passed", "status=passed"],
    ["failed", s.failed + s.error, "st-failed", "status=failed,error"],
    ["regressions", s.regressions, "change-regression", "change=regression"],
    ["fixes", s.fixes, "change-fix", "change=fix"],
    ["new", s.new, "change-new", "change=new"],
    ["flaky", s.flaky, "flaky", "flaky=true"],
  ];
  return (
    <div className="counters" data-testid="counters">
      {items.map(([label, n, cls, q]) =>
        runId !== undefined ? (
          <Link key={label} href={`/runs/${runId}/results${q ? `?${q}` : ""}`} className={`counter ${cls}${n ? "" : " zero"}`}>
            <span className="counter-n">{formatCount(n)}</span>
            <span className="counter-l">{label}</span>
          </Link>
        ) : (
          <span key={label} className={`counter ${cls}${n ? "" : " zero"}`}>
            <span className="counter-n">{formatCount(n)}</span>
            <span className="counter-l">{label}</span>
          </span>
        ),
      )}
    </div>
  );
}

function RunResults({ runId }: { runId: number }) {
  const summary = useRunSummary(runId);
  if (summary.isPending) return <Loading what="Reading test results" inline />;
  if (summary.isError) return null; // results not available for this run (no tests, or the feature is off)
  const s = summary.data;
  if (s.analysis === "none" || s.total === 0) return s.analysis === "pending" ? <p className="muted">Test results are being analysed…</p> : null;
  return (
    <div className="run-results">
      <div className="section-head">
        <h3>Test results</h3>
        <Link href={`/runs/${runId}/results`} className="btn small">
          Open results ›
        </Link>
        {s.analysis === "pending" && <span className="muted small">analysis in progress…</span>}
      </div>
      <Counters s={s} runId={runId} />
    </div>
  );
}

function RunPanel({ runId }: { runId: number }) {
  const run = useRun(runId);
  const jobs = useJobs(runId);
  const qc = useQueryClient();
  const cancel = useMutation({
    mutationFn: () => unwrap(client.POST("/api/runs/{run_id}/cancel", { params: { path: { run_id: runId } } })),
    onSuccess: (r) => {
      qc.setQueryData(qk.run(runId), r);
      void qc.invalidateQueries({ queryKey: qk.flow(r.flow_id) });
    },
  });
  if (run.isPending) return <Skeleton rows={4} />;
  if (run.isError) return <ErrorBox error={run.error} retry={() => run.refetch()} />;
  const r = run.data;
  const args = Object.entries(r.args ?? {});
  return (
    <section className="card run-panel" data-testid="run-panel">
      <div className="card-head">
        <h2>
          Stage <span className="mono">{r.stage_name}</span> {r.label && <span className="flow-label">{r.label}</span>}{" "}
          <StatusBadge state={r.state} result={r.result} />
          {(r.tests_quarantined ?? 0) > 0 && (
            <span className="chip quarantined" data-testid="run-quarantined" title="failures of quarantined tests: they do not make the run fail">
              {plural(r.tests_quarantined ?? 0, "quarantined failure")}
            </span>
          )}
        </h2>
        {r.state !== "completed" && (
          <button className="btn danger" onClick={() => cancel.mutate()} disabled={cancel.isPending}>
            Cancel run
          </button>
        )}
      </div>
      <FormError error={cancel.error} />
      {r.reason && <div className="reason">{r.reason}</div>}
      <Kv
        items={[
          ["Created", formatDateTime(r.created)],
          ["Started", formatDateTime(r.started)],
          ["Finished", formatDateTime(r.finished)],
          ["Duration", <Elapsed key="d" start={r.started} end={r.finished} />],
          ...(r.deadline ? [["Time limit", formatDateTime(r.deadline)] as [string, string]] : []),
          ...(r.schema_commit
            ? [["Stage code", <span key="c" className="mono small" title={r.schema_commit} data-testid="run-schema-commit">from the repository at {r.schema_commit.slice(0, 12)}</span>] as [string, ReactNode]]
            : []),
          ["Jobs", `${r.jobs_total}${r.jobs_error ? ` (${r.jobs_error} errored)` : ""}`],
          ["Args", args.length ? <span className="mono small">{args.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join("  ")}</span> : <span className="muted">none</span>],
        ]}
      />
      <RunResults runId={runId} />
      <h3>Jobs</h3>
      {jobs.data && <SplitParts jobs={jobs.data} />}
      {jobs.isPending ? <Skeleton rows={3} /> : jobs.isError ? <ErrorBox error={jobs.error} /> : jobs.data.length ? <JobsTable jobs={jobs.data} /> : <Empty title="No jobs">{r.state === "completed" ? "The run ended before any job was made." : "Jobs appear when the stage starts."}</Empty>}
    </section>
  );
}

function FlowActions({ flow }: { flow: Flow }) {
  const qc = useQueryClient();
  const [, navigate] = useLocation();
  const cancel = useMutation({
    mutationFn: () => unwrap(client.POST("/api/flows/{flow_id}/cancel", { params: { path: { flow_id: flow.id } } })),
    onSuccess: (f) => qc.setQueryData(qk.flow(f.id), f),
  });
  const again = useMutation({
    mutationFn: () =>
      unwrap(client.POST("/api/branches/{branch_id}/flows", { params: { path: { branch_id: flow.branch_id } }, body: { kind: flow.kind as "ci" | "dev", args: flow.args } })),
    onSuccess: (f) => {
      qc.setQueryData(qk.flow(f.id), f);
      navigate(`/flows/${f.id}`);
    },
  });
  return (
    <>
      <FormError error={cancel.error ?? again.error} />
      {flow.state !== "completed" ? (
        <button className="btn danger" onClick={() => cancel.mutate()} disabled={cancel.isPending}>
          Cancel flow
        </button>
      ) : (
        <button className="btn" onClick={() => again.mutate()} disabled={again.isPending} title="Start a new flow with the same kind and args">
          ↻ Run again
        </button>
      )}
    </>
  );
}

/** Stages that did not start by themselves: manual stages ready to start, children stopped by their parent. */
export function WaitingStages({ flow }: { flow: Flow }) {
  const qc = useQueryClient();
  const [, navigate] = useLocation();
  const start = useMutation({
    mutationFn: (stage_name: string) =>
      unwrap(client.POST("/api/flows/{flow_id}/runs", { params: { path: { flow_id: flow.id } }, body: { stage_name } })),
    onSuccess: (r) => {
      void qc.invalidateQueries({ queryKey: qk.flow(flow.id) });
      navigate(`/flows/${flow.id}?run=${r.id}`, { replace: true });
    },
  });
  const manual = flow.manual_stages ?? [];
  const skipped = flow.skipped_stages ?? [];
  if (!manual.length && !skipped.length) return null;
  return (
    <section className="card waiting-stages" data-testid="waiting-stages">
      <FormError error={start.error} />
      {manual.map((name) => (
        <div key={name} className="waiting-stage" data-testid="manual-stage">
          <span>
            Stage <span className="mono">{name}</span> waits to be started by hand.
          </span>
          <button className="btn primary small" onClick={() => start.mutate(name)} disabled={start.isPending}>
            ▶ Start {name}
          </button>
        </div>
      ))}
      {skipped.map((s) => (
        <div key={s.stage_name} className="waiting-stage" data-testid="skipped-stage">
          <span>
            Stage <span className="mono">{s.stage_name}</span> did not start: <span className="reason-inline">{s.reason}</span>
          </span>
        </div>
      ))}
    </section>
  );
}

function FlowSummaryLine({ flow }: { flow: Flow }) {
  const s = useFlowSummary(flow.id, flow.state === "completed" || flow.runs?.some((r) => r.state === "completed"));
  if (!s.data || !s.data.total) return null;
  const d = s.data;
  return (
    <span className="flow-tests">
      tests: <b>{formatCount(d.passed)}</b>/{formatCount(d.total)} passed
      {d.regressions > 0 && <span className="chip change-regression">{formatCount(d.regressions)} regressions</span>}
      {d.fixes > 0 && <span className="chip change-fix">{formatCount(d.fixes)} fixes</span>}
    </span>
  );
}

export default function FlowPage({ id, runId }: { id?: number; runId?: number }) {
  if (id === undefined) return <RunToFlow runId={runId!} />;
  return <FlowView id={id} />;
}

function RunToFlow({ runId }: { runId: number }) {
  const run = useRun(runId);
  if (run.isError) return <ErrorBox error={run.error} />;
  if (!run.data) return <Loading />;
  return <Redirect to={`/flows/${run.data.flow_id}?run=${runId}`} replace />;
}

function FlowView({ id }: { id: number }) {
  const flow = useFlow(id);
  const branch = useBranch(flow.data?.branch_id);
  const project = useProject(branch.data?.project_id);
  const stages = useStages(flow.data?.branch_id);
  const search = new URLSearchParams(useSearch());
  const [, navigate] = useLocation();
  const f = flow.data;
  useTitle(f ? `Flow ${f.kind.toUpperCase()} #${f.seq}` : "Flow");
  const runs = useMemo(() => f?.runs ?? [], [f?.runs]);
  const selected = Number(search.get("run")) || (runs.find((r) => r.state === "running" || (r.state === "completed" && r.result !== "passed")) ?? runs[runs.length - 1])?.id;

  if (flow.isPending) return <Skeleton rows={8} />;
  if (flow.isError) return <ErrorBox error={flow.error} retry={() => flow.refetch()} />;
  if (!f) return null;
  const args = Object.entries(f.args ?? {});
  const select = (r: RunBrief) => navigate(`/flows/${id}?run=${r.id}`, { replace: true });
  return (
    <>
      <PageHeader
        crumbs={[
          { label: "Projects", href: "/" },
          { label: project.data?.name ?? "…" },
          { label: branch.data?.name ?? "…", href: `/branches/${f.branch_id}${f.kind === "dev" ? "/dev" : ""}` },
        ]}
        title={
          <>
            Flow {f.kind.toUpperCase()} #{f.seq} {f.label && <span className="flow-label" data-testid="flow-label">{f.label}</span>}{" "}
            <StatusBadge state={f.state} result={f.result} />
          </>
        }
        actions={<FlowActions flow={f} />}
      >
        <div className="meta-line">
          <span>{triggerText(f.trigger)}</span>
          <span>
            created <TimeAgo value={f.created} />
          </span>
          <span>
            duration <Elapsed start={f.started} end={f.finished} />
          </span>
          {args.length > 0 && <span className="mono small">{args.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join("  ")}</span>}
          <FlowSummaryLine flow={f} />
        </div>
      </PageHeader>
      {runs.length === 0 && !stages.data?.length ? (
        <Empty title="No stages ran">The branch has no enabled stage starting with the flow.</Empty>
      ) : (
        <StageGraph stages={stages.data ?? []} runs={runs} selectedRun={selected} onSelect={select} />
      )}
      <RepoChanges commits={f.commits} />
      <WaitingStages flow={f} />
      {selected ? <RunPanel key={selected} runId={selected} /> : <Empty title="Nothing ran yet">The flow's first stages start as soon as it is scheduled.</Empty>}
    </>
  );
}
