/**
 * A run's test results: counters, server-side filters (in the URL), relevancy order (regressions
 * first), keyset pages loaded as the virtual list scrolls, and a detail panel.
 */
import { memo, useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Link, useLocation, useSearch } from "wouter";
import { useVirtualizer } from "@tanstack/react-virtual";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { client, unwrap } from "../api/client";
import { qk } from "../lib/queryKeys";
import { useJobs, useReanalysis, useResults, useRunSummary, type ResultFilters } from "../api/queries";
import type { Job, Reanalysis, ResultsSummary, TestResult } from "../api/types";
import { PageHeader } from "../components/Layout";
import { QuarantineControl } from "../components/Quarantine";
import { CulpritLine, CulpritsPanel, culpritOf, useCulprits } from "../components/Culprits";
import { useRunCrumbs } from "../components/RunCrumbs";
import { Empty, ErrorBox, FormError, Loading, useTitle } from "../components/ui";
import { formatCount, formatSeconds, plural } from "../lib/format";
import FailureGroupsView from "./FailureGroups";
import RunIssues from "../components/RunIssues";
import RunArtifacts from "../components/RunArtifacts";

const STATUSES = ["passed", "failed", "error", "skipped", "disabled", "not-run"] as const;
const CHANGES = ["regression", "fix", "new", "none"] as const;
const SORTS: [string, string][] = [
  ["relevancy", "Most relevant first"],
  ["-duration", "Slowest first"],
  ["id", "Report order"],
  ["-id", "Reverse report order"],
];
const ROW_H = 34;

/** The range filters: [URL and API parameter, label]. */
const RANGES: [RangeKey, string][] = [
  ["age_min", "age ≥"],
  ["age_max", "age ≤"],
  ["instability_min", "instability ≥"],
  ["instability_max", "instability ≤"],
];
type RangeKey = "age_min" | "age_max" | "instability_min" | "instability_max";

/** A non-negative whole number from the URL, or undefined (anything else is not a filter). */
function count(v: string | null): number | undefined {
  return v !== null && /^\d{1,9}$/.test(v) ? Number(v) : undefined;
}

function readFilters(search: string): ResultFilters {
  const p = new URLSearchParams(search);
  const flaky = p.get("flaky");
  return {
    ...Object.fromEntries(RANGES.map(([k]) => [k, count(p.get(k))])),
    agents_group: p.get("group") ?? undefined,
    status: p.get("status") ?? undefined,
    change: p.get("change") ?? undefined,
    flaky: flaky === "true" ? true : flaky === "false" ? false : undefined,
    q: p.get("q") ?? undefined,
    job_id: p.get("job") ? Number(p.get("job")) : undefined,
    sort: p.get("sort") ?? undefined,
  };
}

function toSearch(f: ResultFilters, sel?: number | null): string {
  const p = new URLSearchParams();
  if (f.status) p.set("status", f.status);
  if (f.change) p.set("change", f.change);
  if (f.flaky !== undefined) p.set("flaky", String(f.flaky));
  if (f.q) p.set("q", f.q);
  if (f.job_id) p.set("job", String(f.job_id));
  for (const [k] of RANGES) if (f[k] !== undefined) p.set(k, String(f[k]));
  if (f.agents_group) p.set("group", f.agents_group);
  if (f.sort && f.sort !== "relevancy") p.set("sort", f.sort);
  if (sel) p.set("sel", String(sel));
  const s = p.toString();
  return s ? `?${s}` : "";
}

function toggle(list: string | undefined, value: string): string | undefined {
  const set = new Set((list ?? "").split(",").filter(Boolean));
  if (set.has(value)) set.delete(value);
  else set.add(value);
  return set.size ? [...set].join(",") : undefined;
}

function SummaryCounters({ s, f, set }: { s: ResultsSummary; f: ResultFilters; set: (f: ResultFilters) => void }) {
  const cards: [string, number, string, ResultFilters][] = [
    ["total", s.total, "", {}],
    ["passed", s.passed, "st-passed", { status: "passed" }],
    ["failed", s.failed + s.error, "st-failed", { status: "failed,error" }],
    ["regressions", s.regressions, "change-regression", { change: "regression" }],
    ["fixes", s.fixes, "change-fix", { change: "fix" }],
    ["new", s.new, "change-new", { change: "new" }],
    ["flaky", s.flaky, "flaky", { flaky: true }],
  ];
  const same = (a: ResultFilters) => (a.status ?? "") === (f.status ?? "") && (a.change ?? "") === (f.change ?? "") && a.flaky === f.flaky;
  return (
    <div className="counters" data-testid="counters">
      {cards.map(([label, n, cls, filt]) => (
        <button
          key={label}
          className={`counter ${cls}${n ? "" : " zero"}${same(filt) && !f.q && !f.job_id ? " active" : ""}`}
          onClick={() => set({ ...filt, sort: f.sort, job_id: f.job_id, q: f.q })}
          data-testid={`counter-${label}`}
        >
          <span className="counter-n">{formatCount(n)}</span>
          <span className="counter-l">{label}</span>
        </button>
      ))}
    </div>
  );
}

function jobLabel(j: Job): string {
  return [j.name, j.config_name, j.system].filter(Boolean).join(" · ");
}

function Filters({ f, set, jobs }: { f: ResultFilters; set: (f: ResultFilters) => void; jobs: Job[] }) {
  const [text, setText] = useState(f.q ?? "");
  const last = useRef(f.q ?? "");
  useEffect(() => {
    if ((f.q ?? "") !== last.current) {
      last.current = f.q ?? "";
      setText(f.q ?? "");
    }
  }, [f.q]);
  useEffect(() => {
    if (text === (f.q ?? "")) return;
    const t = setTimeout(() => {
      last.current = text;
      set({ ...f, q: text || undefined });
    }, 120);
    return () => clearTimeout(t);
  }, [text]); // eslint-disable-line react-hooks/exhaustive-deps
  const statuses = new Set((f.status ?? "").split(","));
  const changes = new Set((f.change ?? "").split(","));
  const systems = [...new Set(jobs.map((j) => j.system))];
  const groups = [...new Set(jobs.map((j) => j.agents_group))].sort();
  const ranged = RANGES.some(([k]) => f[k] !== undefined);
  return (
    <div className="filters" data-testid="filters">
      <input type="search" className="filter-text" placeholder="Filter by test name…" value={text} onChange={(e) => setText(e.target.value)} aria-label="Filter by test name" data-testid="filter-q" />
      <div className="chip-group" role="group" aria-label="Status">
        {STATUSES.map((s) => (
          <button key={s} className={`chip toggle st-${s}${statuses.has(s) ? " on" : ""}`} aria-pressed={statuses.has(s)} onClick={() => set({ ...f, status: toggle(f.status, s) })} data-testid={`filter-status-${s}`}>
            {s}
          </button>
        ))}
      </div>
      <div className="chip-group" role="group" aria-label="Change">
        {CHANGES.map((c) => (
          <button key={c} className={`chip toggle change-${c}${changes.has(c) ? " on" : ""}`} aria-pressed={changes.has(c)} onClick={() => set({ ...f, change: toggle(f.change, c) })} data-testid={`filter-change-${c}`}>
            {c === "none" ? "unchanged" : c}
          </button>
        ))}
      </div>
      <select value={f.flaky === undefined ? "" : String(f.flaky)} onChange={(e) => set({ ...f, flaky: e.target.value === "" ? undefined : e.target.value === "true" })} aria-label="Flaky">
        <option value="">flaky or not</option>
        <option value="true">flaky only</option>
        <option value="false">not flaky</option>
      </select>
      <select value={f.job_id ?? ""} onChange={(e) => set({ ...f, job_id: e.target.value ? Number(e.target.value) : undefined })} aria-label="Job and system" data-testid="filter-job">
        <option value="">all jobs{systems.length > 1 ? ` (${systems.length} systems)` : ""}</option>
        {jobs.map((j) => (
          <option key={j.id} value={j.id}>
            {jobLabel(j)}
          </option>
        ))}
      </select>
      <select value={f.agents_group ?? ""} onChange={(e) => set({ ...f, agents_group: e.target.value || undefined })} aria-label="Agents group" data-testid="filter-group">
        <option value="">all agents groups</option>
        {groups.map((g) => (
          <option key={g} value={g}>
            {g}
          </option>
        ))}
      </select>
      <span className="chip-group" role="group" aria-label="Age and instability">
        {RANGES.map(([k, label]) => (
          <RangeInput key={k} label={label} value={f[k]} onChange={(n) => set({ ...f, [k]: n })} testId={`filter-${k}`} />
        ))}
      </span>
      {(f.status || f.change || f.flaky !== undefined || f.q || f.job_id || f.agents_group || ranged) && (
        <button className="btn ghost small" onClick={() => set({ sort: f.sort })}>
          Clear filters
        </button>
      )}
    </div>
  );
}

/** A small number box that sets its filter when the value is a whole number (empty: no filter). */
function RangeInput({ label, value, onChange, testId }: { label: string; value: number | undefined; onChange: (n: number | undefined) => void; testId: string }) {
  const [text, setText] = useState(value === undefined ? "" : String(value));
  // the latest callback: it carries the latest filters, which another box may have changed meanwhile
  const changed = useRef(onChange);
  changed.current = onChange;
  useEffect(() => setText(value === undefined ? "" : String(value)), [value]);
  useEffect(() => {
    const n = count(text);
    if (n === value || (text !== "" && n === undefined)) return;
    const t = setTimeout(() => changed.current(n), 250);
    return () => clearTimeout(t);
  }, [text]); // eslint-disable-line react-hooks/exhaustive-deps
  return (
    <label className="small muted range-input">
      {label}{" "}
      <input type="number" min={0} step={1} inputMode="numeric" value={text} onChange={(e) => setText(e.target.value)} style={{ width: "4.5em" }} aria-label={label} data-testid={testId} />
    </label>
  );
}

const STATUS_ICON: Record<string, string> = { passed: "✓", failed: "✗", error: "!", skipped: "–", disabled: "–", "not-run": "·" };

const Row = memo(function Row({ r, job, selected, onSelect }: { r: TestResult; job: Job | undefined; selected: boolean; onSelect: (id: number) => void }) {
  return (
    <div className={`rrow${selected ? " selected" : ""}`} onClick={() => onSelect(r.id)} role="row" aria-selected={selected} data-testid="result-row">
      <span className={`rstatus st-${r.status}`} title={r.status} role="cell">
        {STATUS_ICON[r.status]} <span className="rstatus-l">{r.status}</span>
      </span>
      <span role="cell">{r.change !== "none" && <span className={`chip change-${r.change}`}>{r.change}</span>}</span>
      <span className="rname" title={r.test} role="cell">
        {r.test}
        {r.flaky && <span className="chip flaky" title={`flaky: ${r.flaky_rules.join(", ")}`}>flaky</span>}
        {r.quarantined && <span className="chip quarantined" title="quarantined on this branch: its failure does not fail the run">quarantined</span>}
        {r.perf_change && <span className={`chip perf-${r.perf_change}`}>perf {r.perf_change}</span>}
      </span>
      <span className="rmsg muted" title={r.message ?? ""} role="cell">
        {r.message?.split("\n", 1)[0]}
      </span>
      <span className="rjob muted small" role="cell">
        {job ? jobLabel(job) : r.system}
      </span>
      <span className="num small" role="cell">{formatSeconds(r.duration)}</span>
      <span className="num small muted" role="cell" title="runs since the status changed">
        {r.age ?? ""}
      </span>
    </div>
  );
});

function Detail({ r, runId, jobs, branchId, onClose }: { r: TestResult; runId: number; jobs: Map<number, Job>; branchId?: number; onClose: () => void }) {
  const job = jobs.get(r.job_id);
  return (
    <aside className="card result-detail" data-testid="result-detail">
      <div className="card-head">
        <h3 className="mono break">{r.test}</h3>
        <button className="icon-btn" onClick={onClose} aria-label="Close">
          ×
        </button>
      </div>
      <div className="chips">
        <span className={`chip st-${r.status}`}>{r.status}</span>
        {r.change !== "none" && <span className={`chip change-${r.change}`}>{r.change}</span>}
        {r.flaky && <span className="chip flaky">flaky ({r.flaky_rules.join(", ")})</span>}
        {r.quarantined && <span className="chip quarantined">quarantined</span>}
        {r.perf_change && <span className={`chip perf-${r.perf_change}`}>perf {r.perf_change}</span>}
      </div>
      <dl className="kv">
        <div>
          <dt>Duration</dt>
          <dd>{formatSeconds(r.duration)}</dd>
        </div>
        <div>
          <dt>Job</dt>
          <dd>{job ? <Link href={`/jobs/${job.id}`}>{jobLabel(job)}</Link> : r.job_id}</dd>
        </div>
        <div>
          <dt>Same status for</dt>
          <dd>{r.age === null ? "–" : plural(r.age, "earlier run")}</dd>
        </div>
        <div>
          <dt>Instability</dt>
          <dd>{r.instability ?? "–"}</dd>
        </div>
      </dl>
      {r.change === "regression" && <DetailCulprit runId={runId} test={r.test} />}
      {r.message && <pre className="result-msg">{r.message}</pre>}
      {r.values && Object.keys(r.values).length > 0 && (
        <table className="table small">
          <tbody>
            {Object.entries(r.values).map(([k, v]) => (
              <tr key={k}>
                <td className="mono">{k}</td>
                <td className="num">{typeof v === "number" ? v : JSON.stringify(v)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {branchId !== undefined && <QuarantineControl key={r.test_case_id} testCaseId={r.test_case_id} branchId={branchId} />}
      <Link className="btn primary" href={`/test-cases/${r.test_case_id}${branchId ? `?branch=${branchId}` : ""}`} data-testid="history-link">
        History of this test ›
      </Link>
    </aside>
  );
}

/** Force a re-analysis of the run's results (a project member may): the figures are computed
 * again from the history the run had, in a background task. The button says "Re-analysing…"
 * until the event "reanalysis" says it is done (or failed); the page's queries are then re-read
 * (kraken/results/reanalysis.py, src/lib/live.ts). */
function ReanalyzeButton({ runId }: { runId: number }) {
  const qc = useQueryClient();
  const current = useReanalysis(runId);
  const run = useMutation({
    mutationFn: () => unwrap(client.POST("/api/runs/{run_id}/reanalyze", { params: { path: { run_id: runId } } })),
    // the answer is the queued (or already running) re-analysis; an event may have brought a later state first
    onSuccess: (r) =>
      qc.setQueryData<Reanalysis>(qk.reanalysis(runId), (old) => (old && old.generation >= r.generation ? old : r)),
  });
  const state = current.data?.state;
  const busy = run.isPending || state === "queued" || state === "running";
  return (
    <>
      <button
        className="btn"
        onClick={() => run.mutate()}
        disabled={busy}
        title="Analyse this run's results again against their history"
        data-testid="reanalyze"
        data-state={state}
        data-version={current.data ? String(current.data.version) : undefined}
      >
        {busy ? "Re-analysing…" : "Re-analyse"}
      </button>
      {state === "failed" && (
        <span className="error small" role="alert" data-testid="reanalyze-error">
          The re-analysis failed: {current.data?.error}
        </span>
      )}
      <FormError error={run.error} />
    </>
  );
}

function DetailCulprit({ runId, test }: { runId: number; test: string }) {
  const s = culpritOf(useCulprits(runId).data, test);
  return s ? (
    <p className="small" data-testid="detail-culprit">
      <CulpritLine s={s} />
    </p>
  ) : null;
}

/** The results page's views: ``?view=`` value and label. */
const VIEWS: [string, string][] = [
  ["", "All results"],
  ["groups", "Failures by cause"],
  ["issues", "Linter issues"],
  ["artifacts", "Artifacts"],
];

export default function ResultsPage({ runId }: { runId: number }) {
  const search = useSearch();
  const [, navigate] = useLocation();
  const f = useMemo(() => readFilters(search), [search]);
  const sel = Number(new URLSearchParams(search).get("sel")) || null;
  const view = new URLSearchParams(search).get("view");
  const grouped = view === "groups";
  const set = (nf: ResultFilters, nsel: number | null = null) => navigate(`/runs/${runId}/results${toSearch(nf, nsel)}`, { replace: true });
  const current = useRef({ f, set });
  current.current = { f, set };
  const select = useCallback((id: number) => current.current.set(current.current.f, id), []);
  // The rows first: the server answers requests in turn, so the others start after them.
  const results = useResults(runId, f);
  const rowsIn = results.data !== undefined || results.isError;
  const summary = useRunSummary(runId, rowsIn);
  const jobsQ = useJobs(rowsIn ? runId : undefined);
  const { crumbs, branchId } = useRunCrumbs(rowsIn ? runId : undefined);
  useTitle("Test results");
  const jobs = useMemo(() => new Map((jobsQ.data ?? []).map((j) => [j.id, j])), [jobsQ.data]);
  const rows = useMemo(() => results.data?.pages.flatMap((p) => p.items) ?? [], [results.data]);
  const total = results.data?.pages[0]?.total ?? 0;
  const scroller = useRef<HTMLDivElement>(null);
  const v = useVirtualizer({
    count: rows.length + (results.hasNextPage ? 1 : 0),
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_H,
    overscan: 15,
  });
  const items = v.getVirtualItems();
  const lastIndex = items.length ? items[items.length - 1].index : 0;
  useEffect(() => {
    if (results.hasNextPage && !results.isFetchingNextPage && lastIndex >= rows.length - 60) void results.fetchNextPage();
  }, [lastIndex, rows.length, results]);
  // new filter: back to the top
  useEffect(() => {
    scroller.current?.scrollTo({ top: 0 });
  }, [search]);
  const selected = sel ? rows.find((r) => r.id === sel) : undefined;

  let body;
  if (results.isPending) body = <Loading what="Loading results" />;
  else if (results.isError && !results.data) body = <ErrorBox error={results.error} retry={() => results.refetch()} title="The results cannot be read" />;
  else if (total === 0)
    body =
      summary.data && summary.data.total > 0 ? (
        <Empty title="No result matches these filters">
          <button className="link" onClick={() => set({ sort: f.sort })}>
            Clear the filters
          </button>
        </Empty>
      ) : summary.data?.analysis === "pending" ? (
        <Empty title="Results are being analysed" icon="⏳">They appear here once the analysis against the branch's history is done.</Empty>
      ) : (
        <Empty title="This run has no test results">Stages report tests with tools such as pytest, junit_collect or go_test.</Empty>
      );
  else
    body = (
      <div className={`results-table${results.isPlaceholderData ? " stale" : ""}`} role="table" aria-label="Test results" aria-rowcount={total}>
        <div className="rrow rhead" role="row">
          <span role="columnheader">Status</span>
          <span role="columnheader">Change</span>
          <span role="columnheader">Test</span>
          <span role="columnheader">Message</span>
          <span role="columnheader">Job</span>
          <span className="num" role="columnheader">
            Duration
          </span>
          <span className="num" role="columnheader" title="runs since the status changed">
            Age
          </span>
        </div>
        <div className="rscroll" ref={scroller} data-testid="results-scroll">
          <div style={{ height: v.getTotalSize(), position: "relative" }}>
            {items.map((it) => (
              <div key={it.key} style={{ position: "absolute", top: 0, left: 0, right: 0, height: ROW_H, transform: `translateY(${it.start}px)` }}>
                {it.index < rows.length ? (
                  <Row r={rows[it.index]} job={jobs.get(rows[it.index].job_id)} selected={rows[it.index].id === sel} onSelect={select} />
                ) : (
                  <div className="rrow loading-row">
                    <Loading what="Loading more" inline />
                  </div>
                )}
              </div>
            ))}
          </div>
        </div>
      </div>
    );

  return (
    <>
      <PageHeader crumbs={crumbs} title="Test results" actions={<ReanalyzeButton runId={runId} />}>
        {summary.data?.analysis === "pending" && <div className="notice">Some results are still being analysed; the figures update when they are done.</div>}
      </PageHeader>
      {summary.data ? <SummaryCounters s={summary.data} f={f} set={(nf) => set(nf)} /> : summary.isError ? null : <div className="counters placeholder" />}
      {summary.data && <CulpritsPanel runId={runId} regressions={summary.data.regressions} />}
      <div className="chip-group" role="group" aria-label="View">
        {VIEWS.map(([v, label]) => (
          <Link key={v} className={`chip toggle${(view ?? "") === v ? " on" : ""}`} href={`/runs/${runId}/results${v ? `?view=${v}` : ""}`} aria-pressed={(view ?? "") === v} data-testid={`view-${v || "all"}`}>
            {label}
            {v === "issues" && summary.data?.issues ? ` (${formatCount(summary.data.issues)})` : ""}
          </Link>
        ))}
      </div>
      {grouped ? <FailureGroupsView runId={runId} branchId={branchId} /> : view === "issues" ? <RunIssues runId={runId} /> : view === "artifacts" ? <RunArtifacts runId={runId} /> : <>
      <Filters f={f} set={(nf) => set(nf)} jobs={jobsQ.data ?? []} />
      <div className="results-meta muted small">
        <span data-testid="results-total">
          {results.data ? `${plural(total, "result")}${rows.length < total ? `, ${formatCount(rows.length)} loaded` : ""}` : ""}
          {results.isFetching && !results.isFetchingNextPage ? " · updating…" : ""}
        </span>
        <select value={f.sort ?? "relevancy"} onChange={(e) => set({ ...f, sort: e.target.value })} aria-label="Order" data-testid="results-sort">
          {SORTS.map(([v, label]) => (
            <option key={v} value={v}>
              {label}
            </option>
          ))}
        </select>
      </div>
      <div
        className={selected ? "results-layout with-detail" : "results-layout"}
        data-testid="results-layout"
        data-filters={toSearch(f)}
        data-fresh={String(!!results.data && !results.isPlaceholderData && !(results.isFetching && !results.isFetchingNextPage))}
      >
        {body}
        {selected && <Detail r={selected} runId={runId} jobs={jobs} branchId={branchId} onClose={() => set(f)} />}
      </div>
      </>}
    </>
  );
}
