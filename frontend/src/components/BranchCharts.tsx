/**
 * A branch's charts over its last CI flows: pass ratio, failures, regressions, flaky tests and
 * duration (GET /api/branches/{id}/stats). uPlot comes with the Chart component, loaded only
 * when this tab is opened (as on the test case page).
 */
import { lazy, Suspense, useCallback, useMemo, useState } from "react";
import { useLocation } from "wouter";
import { useBranchStats } from "../api/queries";
import type { BranchFlowStats } from "../api/types";
import type { Series } from "./Chart";
import { Empty, ErrorBox, Loading } from "./ui";

const Chart = lazy(() => import("./Chart").then((m) => ({ default: m.Chart })));
const LIMITS = [10, 30, 100, 300];

/** The charts' series from the flows (pure: the figures the charts draw). */
export function chartSeries(flows: BranchFlowStats[]): { ratio: Series[]; counts: Series[]; duration: Series[] } {
  return {
    ratio: [{ label: "pass ratio", unit: "%", color: "#2e9d5b", values: flows.map((f) => (f.pass_ratio === null ? null : Math.round(f.pass_ratio * 1000) / 10)) }],
    counts: [
      { label: "failures", unit: "tests", color: "#d64545", values: flows.map((f) => (f.total ? f.failed : null)) },
      { label: "regressions", unit: "tests", color: "#e08a00", values: flows.map((f) => (f.total ? f.regressions : null)) },
      { label: "flaky", unit: "tests", color: "#8a5cd6", values: flows.map((f) => (f.total ? f.flaky : null)) },
    ],
    duration: [{ label: "duration", unit: "s", color: "#3b7dd8", values: flows.map((f) => f.duration) }],
  };
}

export default function BranchCharts({ branchId }: { branchId: number }) {
  const [limit, setLimit] = useState(30);
  const q = useBranchStats(branchId, limit);
  const [, navigate] = useLocation();
  const flows = useMemo(() => q.data?.flows ?? [], [q.data]);
  const x = useMemo(() => flows.map((_, i) => i), [flows]);
  const labels = useMemo(() => flows.map((f) => `#${f.label ?? f.seq}`), [flows]);
  const series = useMemo(() => chartSeries(flows), [flows]);
  const pick = useCallback((i: number) => flows[i] && navigate(`/flows/${flows[i].flow_id}`), [flows, navigate]);
  if (q.isError) return <ErrorBox error={q.error} retry={() => q.refetch()} />;
  if (q.isPending) return <Loading what="Loading the branch's figures" />;
  return (
    <section data-testid="branch-charts" data-flows={flows.length}>
      <div className="results-meta muted small">
        <span>
          The last {flows.length} CI flows; a click on a point opens its flow.
        </span>
        <select value={limit} onChange={(e) => setLimit(Number(e.target.value))} aria-label="Flows" data-testid="charts-limit">
          {LIMITS.map((n) => (
            <option key={n} value={n}>
              last {n} flows
            </option>
          ))}
        </select>
      </div>
      {flows.length === 0 ? (
        <Empty title="No CI flow yet">The charts show each CI flow's tests and duration.</Empty>
      ) : (
        <Suspense fallback={<div className="chart-placeholder"><Loading what="Loading the charts" inline /></div>}>
          {(
            [
              ["Pass ratio (%)", series.ratio, "chart-ratio"],
              ["Failures, regressions and flaky tests", series.counts, "chart-counts"],
              ["Duration", series.duration, "chart-duration"],
            ] as [string, Series[], string][]
          ).map(([title, s, id]) => (
            <div className="card" key={id} data-testid={id}>
              <h3>{title}</h3>
              <Chart x={x} xLabels={labels} series={s} height={180} onPick={pick} />
            </div>
          ))}
        </Suspense>
      )}
    </section>
  );
}
