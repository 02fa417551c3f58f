import { lazy, Suspense, useCallback, useMemo } from "react";
import { Link, useLocation, useSearch } from "wouter";
import { useBranch, useProject, useTestHistory } from "../api/queries";
import type { HistoryItem } from "../api/types";
import type { Series } from "../components/Chart";
import { Comments } from "../components/Comments";
import { QuarantineControl } from "../components/Quarantine";
import { PageHeader } from "../components/Layout";
import { Empty, ErrorBox, Loading, Skeleton, useTitle } from "../components/ui";

const Chart = lazy(() => import("../components/Chart").then((m) => ({ default: m.Chart })));
import { formatSeconds } from "../lib/format";

const COLORS = ["#6366f1", "#f59e0b", "#10b981", "#ec4899", "#06b6d4"];

function flowName(h: HistoryItem): string {
  return `${h.flow_kind.toUpperCase()} #${h.flow_seq ?? h.flow_id}`;
}

interface Env {
  key: string;
  label: string;
}

const envKey = (h: HistoryItem) => `${h.system ?? ""}|${h.config ?? ""}`;
const envLabel = (h: HistoryItem) => [h.system, h.config].filter(Boolean).join(" · ") || "default";

/** History as a grid: one column per flow (oldest first), one row per environment (system, config). */
export function historyGrid(newestFirst: HistoryItem[]) {
  const items = [...newestFirst].reverse();
  const flows: { id: number; label: string; run: number }[] = [];
  const flowIndex = new Map<number, number>();
  const envs: Env[] = [];
  const envIndex = new Map<string, number>();
  for (const h of items) {
    if (!flowIndex.has(h.flow_id)) {
      flowIndex.set(h.flow_id, flows.length);
      flows.push({ id: h.flow_id, label: flowName(h), run: h.run_id });
    }
    const k = envKey(h);
    if (!envIndex.has(k)) {
      envIndex.set(k, envs.length);
      envs.push({ key: k, label: envLabel(h) });
    }
  }
  const cells: (HistoryItem | null)[][] = envs.map(() => flows.map(() => null));
  for (const h of items) cells[envIndex.get(envKey(h))!][flowIndex.get(h.flow_id)!] = h; // the newest of a flow wins
  return { flows, envs, cells };
}

function Strip({ label, cells, flows }: { label: string; cells: (HistoryItem | null)[]; flows: { id: number; label: string }[] }) {
  return (
    <div className="strip-row">
      <span className="strip-label" title={label}>
        {label}
      </span>
      <div className="strip" role="list" aria-label={`Status history on ${label}, oldest first`} data-testid="history-strip">
        {cells.map((h, i) =>
          h ? (
            <Link
              key={i}
              href={`/flows/${h.flow_id}?run=${h.run_id}`}
              className={`strip-cell st-${h.status}${h.change === "regression" || h.change === "fix" ? ` change-${h.change}` : ""}${h.flaky ? " flaky" : ""}`}
              title={`${flowName(h)}: ${h.status}${h.change !== "none" ? ` (${h.change})` : ""}${h.flaky ? ", flaky" : ""} · ${formatSeconds(h.duration)}`}
              role="listitem"
            />
          ) : (
            <span key={i} className="strip-cell missing" title={`${flows[i].label}: not run here`} role="listitem" />
          ),
        )}
      </div>
    </div>
  );
}

export default function TestCasePage({ id }: { id: number }) {
  const search = new URLSearchParams(useSearch());
  const branchId = search.get("branch") ? Number(search.get("branch")) : undefined;
  const [, navigate] = useLocation();
  const history = useTestHistory(id, branchId);
  const branch = useBranch(branchId);
  const project = useProject(history.data?.test_case.project_id);
  const name = history.data?.test_case.name ?? "";
  useTitle(name ? `History of ${name}` : "Test history");
  const items = useMemo(() => [...(history.data?.items ?? [])].reverse(), [history.data]); // oldest first
  const grid = useMemo(() => historyGrid(history.data?.items ?? []), [history.data]);
  const x = useMemo(() => grid.flows.map((_, i) => i), [grid]);
  const labels = useMemo(() => grid.flows.map((f) => f.label), [grid]);
  const series = useMemo(() => {
    const out: Series[] = [];
    grid.envs.slice(0, 4).forEach((env, e) =>
      out.push({ label: `duration ${env.label} (s)`, unit: "s", color: COLORS[e % COLORS.length], values: grid.cells[e].map((h) => h?.duration ?? null) }),
    );
    grid.envs.forEach((env, e) => {
      const keys = new Set<string>();
      for (const h of grid.cells[e]) for (const [k, v] of Object.entries(h?.values ?? {})) if (typeof v === "number") keys.add(k);
      for (const k of keys) {
        if (out.length >= 6) return;
        out.push({ label: `${k} ${env.label}`, unit: k, color: COLORS[out.length % COLORS.length], values: grid.cells[e].map((h) => (typeof h?.values?.[k] === "number" ? h.values[k] : null)) });
      }
    });
    return out;
  }, [grid]);
  const pick = useCallback((i: number) => grid.flows[i] && navigate(`/flows/${grid.flows[i].id}?run=${grid.flows[i].run}`), [grid, navigate]);

  if (history.isError) return <ErrorBox error={history.error} retry={() => history.refetch()} />;
  const counts = items.reduce<Record<string, number>>((acc, h) => ((acc[h.status] = (acc[h.status] ?? 0) + 1), acc), {});
  return (
    <>
      <PageHeader
        crumbs={[
          { label: "Projects", href: "/" },
          { label: project.data?.name ?? "…" },
          ...(branchId ? [{ label: branch.data?.name ?? "…", href: `/branches/${branchId}` }] : []),
          { label: "test history" },
        ]}
        title={<span className="mono break">{name || "…"}</span>}
      >
        <div className="meta-line">
          <span>{branchId ? `on branch ${branch.data?.name ?? ""}` : "on every branch"}</span>
          {branchId && (
            <Link href={`/test-cases/${id}`} className="small">
              show every branch
            </Link>
          )}
          {Object.entries(counts).map(([k, n]) => (
            <span key={k} className={`chip st-${k}`}>
              {n} {k}
            </span>
          ))}
        </div>
      </PageHeader>
      {branchId !== undefined && <QuarantineControl testCaseId={id} branchId={branchId} />}
      {branchId !== undefined && <Comments testCaseId={id} branchId={branchId} />}
      {history.isPending ? (
        <Skeleton rows={6} />
      ) : items.length === 0 ? (
        <Empty title="No results recorded for this test yet" />
      ) : (
        <>
          <section className="card">
            <h3>Status, oldest to newest</h3>
            {grid.envs.map((env, e) => (
              <Strip key={env.key} label={env.label} cells={grid.cells[e]} flows={grid.flows} />
            ))}
          </section>
          <section className="card">
            <h3>Duration{series.length > 1 ? " and values" : ""}</h3>
            <Suspense fallback={<div className="chart-placeholder"><Loading what="Loading the chart" inline /></div>}>
              <Chart x={x} xLabels={labels} series={series} onPick={pick} />
            </Suspense>
          </section>
          <section className="card">
            <div className="table-wrap">
              <table className="table" data-testid="history-table">
                <thead>
                  <tr>
                    <th>Flow</th>
                    <th>Status</th>
                    <th>Change</th>
                    <th>Duration</th>
                    <th>Environment</th>
                    <th>Job</th>
                  </tr>
                </thead>
                <tbody>
                  {[...items].reverse().map((h) => (
                    <tr key={h.id}>
                      <td>
                        <Link href={`/flows/${h.flow_id}?run=${h.run_id}`}>{flowName(h)}</Link>
                      </td>
                      <td>
                        <span className={`chip st-${h.status}`}>{h.status}</span>
                        {h.flaky && <span className="chip flaky">flaky</span>}
                      </td>
                      <td>{h.change !== "none" ? <span className={`chip change-${h.change}`}>{h.change}</span> : <span className="muted">–</span>}</td>
                      <td className="num">{formatSeconds(h.duration)}</td>
                      <td className="small mono">{[h.system, h.config].filter(Boolean).join(" · ")}</td>
                      <td>
                        <Link href={`/jobs/${h.job_id}`}>log</Link>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </section>
        </>
      )}
    </>
  );
}
