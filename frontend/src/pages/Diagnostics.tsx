/** Diagnostics for administrators (GET /api/diagnostics): queues, agents' last contact, and each
 * process's failed background tasks, scheduler passes and last errors. */
import type { ReactNode } from "react";
import { Link } from "wouter";
import { useQuery } from "@tanstack/react-query";
import { client, unwrap } from "../api/client";
import type { components } from "../api/schema";
import { PageHeader } from "../components/Layout";
import { Dot, Empty, ErrorBox, Skeleton, TimeAgo, useTitle } from "../components/ui";

type Diagnostics = components["schemas"]["DiagnosticsOut"];
type Process = components["schemas"]["ProcessOut"];

export function seconds(value: number | null | undefined): string {
  if (value === null || value === undefined) return "never";
  if (value < 1) return `${Math.round(value * 1000)} ms`;
  if (value < 120) return `${value.toFixed(1)} s`;
  if (value < 7200) return `${Math.round(value / 60)} min`;
  return `${(value / 3600).toFixed(1)} h`;
}

function Section({ title, children, testId }: { title: string; children: ReactNode; testId: string }) {
  return (
    <section className="card" data-testid={testId}>
      <div className="card-head">
        <h3>{title}</h3>
      </div>
      {children}
    </section>
  );
}

function Table({ head, rows, empty }: { head: string[]; rows: ReactNode[][]; empty: string }) {
  if (rows.length === 0) return <p className="muted">{empty}</p>;
  return (
    <div className="table-wrap">
      <table className="table">
        <thead>
          <tr>
            {head.map((h) => (
              <th key={h}>{h}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((r, i) => (
            <tr key={i}>
              {r.map((c, j) => (
                <td key={j}>{c}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function ProcessCard({ p }: { p: Process }) {
  const counts = Object.entries(p.tasks).map(([task, c]) => [
    <span className="mono">{task}</span>,
    c.ok ?? 0,
    c.retried ?? 0,
    c.failed ? <span className="chip agent-offline">{c.failed}</span> : 0,
  ]);
  return (
    <Section title={`${p.service} · ${p.host} · pid ${p.pid}`} testId={`process-${p.service}`}>
      <div className="meta-line">
        <span>
          started <TimeAgo value={p.started} />
        </span>
        <span>
          reported <TimeAgo value={p.at} />
        </span>
      </div>
      <h4>Background tasks</h4>
      <Table head={["Task", "ok", "retried", "failed"]} rows={counts} empty="No background task ran in this process." />
      <h4>Failed tasks</h4>
      <Table
        head={["When", "Task", "Took", "Error"]}
        rows={p.task_failures.map((f) => [<TimeAgo value={f.at} />, <span className="mono">{f.task}</span>, seconds(f.seconds), <span className="mono small">{f.error}</span>])}
        empty="No task failed lately."
      />
      {(p.service === "serve" || p.service === "controller") && (
        <>
          <h4>Scheduler passes</h4>
          <Table
            head={["When", "Took", "Assigned", "Outcome"]}
            rows={p.scheduler_passes.map((s) => [<TimeAgo value={s.at} />, seconds(s.seconds), s.assigned, s.failed ? "failed" : "ok"])}
            empty="No scheduler pass yet."
          />
        </>
      )}
      <h4>Last errors</h4>
      <Table
        head={["When", "Level", "Logger", "Message"]}
        rows={p.errors.map((e) => [<TimeAgo value={e.at} />, e.level, <span className="mono small">{e.logger}</span>, <span className="mono small">{e.message}</span>])}
        empty="No error logged lately."
      />
    </Section>
  );
}

function Body({ d }: { d: Diagnostics }) {
  return (
    <>
      <Section title="Queues" testId="diag-queues">
        <div className="meta-line">
          <span>{d.jobs.queued ?? 0} queued</span>
          <span>{d.jobs.running ?? 0} running</span>
        </div>
        <Table
          head={["Agents group", "Queued jobs", "Oldest waits"]}
          rows={d.queues.map((q) => [<span className="mono">{q.agents_group}</span>, q.queued, seconds(q.oldest_wait_seconds)])}
          empty="No job is waiting for an agent."
        />
      </Section>
      <Section title="Agents' last contact" testId="diag-agents">
        <Table
          head={["Agent", "State", "Last contact", "Server replica", "Current job"]}
          rows={d.agents.map((a) => {
            const status = !a.enabled ? "disabled" : a.online ? (a.current_job_id ? "busy" : "online") : "offline";
            return [
              <>
                <Dot status={status} /> {a.name}
              </>,
              status,
              a.seconds_since_contact === null ? "never" : `${seconds(a.seconds_since_contact)} ago`,
              <span className="mono small">{a.connected_to ?? "—"}</span>,
              a.current_job_id ? <Link href={`/jobs/${a.current_job_id}`}>job {a.current_job_id}</Link> : "idle",
            ];
          })}
          empty="No agent has registered."
        />
      </Section>
      <p className="muted small">
        {d.shared
          ? "Every server, controller and worker process reports its tasks, scheduler passes and errors through Redis every 5 seconds."
          : "One process (kraken serve) runs everything: its tasks, scheduler passes and errors are below."}
      </p>
      {d.processes.map((p) => (
        <ProcessCard key={`${p.service}-${p.host}-${p.pid}`} p={p} />
      ))}
    </>
  );
}

export default function DiagnosticsPage() {
  useTitle("Diagnostics");
  const q = useQuery({
    queryKey: ["diagnostics"],
    queryFn: () => unwrap<Diagnostics>(client.GET("/api/diagnostics")),
    refetchInterval: 5000,
  });
  return (
    <>
      <PageHeader title="Diagnostics" />
      {q.isPending ? (
        <Skeleton rows={6} />
      ) : q.isError ? (
        <ErrorBox error={q.error} retry={() => q.refetch()} />
      ) : q.data ? (
        <Body d={q.data} />
      ) : (
        <Empty title="No diagnostics" />
      )}
    </>
  );
}
