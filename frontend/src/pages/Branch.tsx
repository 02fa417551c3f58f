import { useMemo, useState, type FormEvent } from "react";
import { Link, useLocation, useSearch } from "wouter";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { client, unwrap } from "../api/client";
import { deleteStage } from "../api/admin";
import { useBranch, useFlows, useProject, useStages } from "../api/queries";
import type { Flow, Stage, StageParameter } from "../api/types";
import { CommitsCell } from "../components/Commits";
import { PageHeader } from "../components/Layout";
import { Dialog, Elapsed, Empty, ErrorBox, FormError, Skeleton, StatusBadge, TimeAgo, useTitle } from "../components/ui";
import { plural } from "../lib/format";
import BranchSettings from "./BranchSettings";
import BranchCharts from "../components/BranchCharts";
import { qk } from "../lib/queryKeys";
import { allows, useRole } from "../lib/roles";

const PAGE = 25;

export function triggerText(t: Record<string, unknown> | undefined | null): string {
  if (!t) return "";
  const reason = String(t.reason ?? "");
  const user = t.user ? ` by ${String(t.user)}` : "";
  return `${reason}${user}`;
}

function FlowsTable({ branchId, kind }: { branchId: number; kind: "ci" | "dev" }) {
  const search = new URLSearchParams(useSearch());
  const [, navigate] = useLocation();
  const page = Math.max(0, Number(search.get("page") ?? 0) || 0);
  const flows = useFlows(branchId, kind, page, PAGE);
  if (flows.isPending) return <Skeleton rows={8} />;
  if (flows.isError) return <ErrorBox error={flows.error} retry={() => flows.refetch()} />;
  const { total, items } = flows.data;
  if (total === 0)
    return (
      <Empty title={`No ${kind.toUpperCase()} flows yet`} icon="▷">
        Press <b>Run flow</b> to start one; it appears here at once and updates live.
      </Empty>
    );
  const pages = Math.ceil(total / PAGE);
  const go = (p: number) => navigate(`?page=${p}`);
  return (
    <>
      <div className="table-wrap">
        <table className="table flows-table" data-testid="flows-table">
          <thead>
            <tr>
              <th>Flow</th>
              <th>Stages</th>
              <th>Commit</th>
              <th>Trigger</th>
              <th>Created</th>
              <th>Duration</th>
            </tr>
          </thead>
          <tbody>
            {items.map((f: Flow) => (
              <tr key={f.id} className={flows.isPlaceholderData ? "stale" : ""}>
                <td>
                  <Link href={`/flows/${f.id}`} className="flow-link">
                    <StatusBadge state={f.state} result={f.result} label={`#${f.seq}`} />
                  </Link>
                  {f.label && <span className="chip">{f.label}</span>}
                </td>
                <td>
                  <div className="stage-badges">
                    {(f.runs ?? []).map((r) => (
                      <Link key={r.id} href={`/flows/${f.id}?run=${r.id}`}>
                        <StatusBadge state={r.state} result={r.result} label={r.stage_name} small title={`${r.stage_name}: ${r.state === "completed" ? r.result : r.state}${r.reason ? ` (${r.reason})` : ""}`} />
                      </Link>
                    ))}
                  </div>
                </td>
                <td>
                  <CommitsCell commits={f.commits} />
                </td>
                <td className="muted">{triggerText(f.trigger)}</td>
                <td>
                  <TimeAgo value={f.created} />
                </td>
                <td>
                  <Elapsed start={f.started} end={f.finished} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {pages > 1 && (
        <div className="pager">
          <button className="btn" disabled={page === 0} onClick={() => go(page - 1)}>
            ‹ Newer
          </button>
          <span className="muted">
            page {page + 1} of {pages} · {plural(total, "flow")}
          </span>
          <button className="btn" disabled={page + 1 >= pages} onClick={() => go(page + 1)}>
            Older ›
          </button>
        </div>
      )}
    </>
  );
}

function triggersSummary(t: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(t ?? {})) {
    if (v === null || v === undefined || v === false || (Array.isArray(v) && !v.length)) continue;
    out.push(typeof v === "object" ? `${k}: ${JSON.stringify(v)}` : v === true ? k : `${k}: ${String(v)}`);
  }
  return out;
}

function DeleteStage({ stage, onClose }: { stage: Stage; onClose: () => void }) {
  const qc = useQueryClient();
  const m = useMutation({
    mutationFn: () => deleteStage(stage.id),
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: qk.stages(stage.branch_id) });
      onClose();
    },
  });
  return (
    <div className="form">
      <p>
        Delete the stage <b className="mono">{stage.name}</b>? Its past runs stay in their flows; new flows no longer run it.
      </p>
      <FormError error={m.error} />
      <div className="form-actions">
        <button type="button" className="btn" onClick={onClose}>
          Cancel
        </button>
        <button type="button" className="btn danger" onClick={() => m.mutate()} disabled={m.isPending}>
          Delete stage
        </button>
      </div>
    </div>
  );
}

function StagesList({ branchId }: { branchId: number }) {
  const stages = useStages(branchId);
  const [deleting, setDeleting] = useState<Stage | null>(null);
  if (stages.isPending) return <Skeleton rows={4} />;
  if (stages.isError) return <ErrorBox error={stages.error} retry={() => stages.refetch()} />;
  if (!stages.data.length)
    return (
      <Empty title="No stages yet" icon="☰">
        A stage says what to run: jobs, their steps and environments. <Link href={`/branches/${branchId}/stages/new`}>Write the first stage</Link>.
      </Empty>
    );
  return (
    <div className="table-wrap">
      <table className="table" data-testid="stages-table">
        <thead>
          <tr>
            <th>Stage</th>
            <th>Parent</th>
            <th>Triggers</th>
            <th>Parameters</th>
            <th>Updated</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {stages.data.map((s) => (
            <tr key={s.id} className={s.enabled ? "" : "disabled-row"}>
              <td>
                <Link href={`/stages/${s.id}`} className="strong">
                  {s.name}
                </Link>
                {!s.enabled && <span className="chip">disabled</span>}
                {s.description && <div className="muted small">{s.description}</div>}
              </td>
              <td className="mono">{s.parent}</td>
              <td>
                {triggersSummary(s.triggers).map((t) => (
                  <span key={t} className="chip mono">
                    {t}
                  </span>
                ))}
                {!triggersSummary(s.triggers).length && <span className="muted">{s.parent === "root" ? "manual" : `after ${s.parent}`}</span>}
              </td>
              <td className="mono small">{(s.schema?.parameters ?? []).map((p) => p.name).join(", ") || <span className="muted">–</span>}</td>
              <td>
                <TimeAgo value={s.updated} />
              </td>
              <td className="num">
                <button className="btn small danger" onClick={() => setDeleting(s)} aria-label={`Delete stage ${s.name}`}>
                  Delete
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <Dialog open={deleting !== null} onClose={() => setDeleting(null)} title="Delete stage">
        {deleting && <DeleteStage stage={deleting} onClose={() => setDeleting(null)} />}
      </Dialog>
    </div>
  );
}

interface ParamRow extends StageParameter {
  stages: string[];
}

/** Parameters of the enabled stages, one field per name (args are shared by the flow's stages). */
export function flowParameters(stages: Stage[]): ParamRow[] {
  const by = new Map<string, ParamRow>();
  for (const s of stages) {
    if (!s.enabled) continue;
    for (const p of s.schema?.parameters ?? []) {
      const row = by.get(p.name);
      if (row) row.stages.push(s.name);
      else by.set(p.name, { ...p, stages: [s.name] });
    }
  }
  return [...by.values()];
}

function RunFlowForm({ branchId, defaultKind, onClose }: { branchId: number; defaultKind: "ci" | "dev"; onClose: () => void }) {
  const stages = useStages(branchId);
  const params = useMemo(() => flowParameters(stages.data ?? []), [stages.data]);
  const [kind, setKind] = useState<"ci" | "dev">(defaultKind);
  const [values, setValues] = useState<Record<string, string | boolean>>({});
  const [, navigate] = useLocation();
  const qc = useQueryClient();
  const m = useMutation({
    mutationFn: () => {
      const args: Record<string, unknown> = {};
      for (const p of params) {
        const v = values[p.name];
        if (v === undefined || v === "") continue;
        args[p.name] = v; // the server converts form strings to the parameter's type
      }
      return unwrap(client.POST("/api/branches/{branch_id}/flows", { params: { path: { branch_id: branchId } }, body: { kind, args } }));
    },
    onSuccess: (flow) => {
      qc.setQueryData(qk.flow(flow.id), flow);
      void qc.invalidateQueries({ queryKey: qk.flows(branchId) });
      onClose();
      navigate(`/flows/${flow.id}`);
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    m.mutate();
  };
  return (
    <form className="form" onSubmit={submit}>
      <fieldset className="segmented">
        <legend>Kind</legend>
        {(["ci", "dev"] as const).map((k) => (
          <label key={k} className={kind === k ? "on" : ""}>
            <input type="radio" name="kind" value={k} checked={kind === k} onChange={() => setKind(k)} />
            {k === "ci" ? "CI (the branch's history)" : "Dev (a trial run)"}
          </label>
        ))}
      </fieldset>
      {stages.isPending ? (
        <Skeleton rows={2} />
      ) : params.length === 0 ? (
        <p className="muted">The stages have no parameters.</p>
      ) : (
        params.map((p) => (
          <label key={p.name} className={p.type === "boolean" ? "check" : ""}>
            {p.type === "boolean" ? (
              <>
                <input
                  type="checkbox"
                  name={p.name}
                  checked={values[p.name] === undefined ? p.default === true : values[p.name] === true}
                  onChange={(e) => setValues({ ...values, [p.name]: e.target.checked })}
                />
                <span>
                  <span className="mono">{p.name}</span> <span className="muted small">({p.stages.join(", ")})</span>
                </span>
              </>
            ) : (
              <>
                <span>
                  <span className="mono">{p.name}</span> <span className="muted small">{p.type} · {p.stages.join(", ")}</span>
                </span>
                <input
                  name={p.name}
                  inputMode={p.type === "string" ? "text" : "decimal"}
                  value={(values[p.name] as string | undefined) ?? ""}
                  placeholder={p.default !== undefined ? String(p.default) : "required"}
                  required={p.default === undefined}
                  onChange={(e) => setValues({ ...values, [p.name]: e.target.value })}
                />
              </>
            )}
            {p.description && <span className="muted small">{p.description}</span>}
          </label>
        ))
      )}
      <FormError error={m.error} />
      <div className="form-actions">
        <button type="button" className="btn" onClick={onClose}>
          Cancel
        </button>
        <button type="submit" className="btn primary" disabled={m.isPending}>
          {m.isPending ? "Starting…" : "Run flow"}
        </button>
      </div>
    </form>
  );
}

export default function BranchPage({ id, tab = "ci" }: { id: number; tab?: string }) {
  const branch = useBranch(id);
  const project = useProject(branch.data?.project_id);
  const [running, setRunning] = useState(false);
  const stages = useStages(id);
  const role = useRole(branch.data?.project_id);
  const canMaintain = allows(role, "maintainer");
  useTitle(branch.data ? `${project.data?.name ?? ""} / ${branch.data.name}` : "Branch");
  if (branch.isError) return <ErrorBox error={branch.error} retry={() => branch.refetch()} />;
  const kind = tab === "dev" ? "dev" : "ci";
  const tabs: [string, string, string][] = [
    ["ci", "CI flows", `/branches/${id}`],
    ["dev", "Dev flows", `/branches/${id}/dev`],
    ["stages", `Stages${stages.data ? ` (${stages.data.length})` : ""}`, `/branches/${id}/stages`],
    ["charts", "Charts", `/branches/${id}/charts`],
    ...(canMaintain ? [["settings", "Settings", `/branches/${id}/settings`] as [string, string, string]] : []),
  ];
  const archived = branch.data?.archived || project.data?.archived;
  return (
    <>
      <PageHeader
        crumbs={[{ label: "Projects", href: "/" }, { label: project.data?.name ?? "…" }]}
        title={
          <>
            {branch.data?.name ?? "…"} <span className="muted mono small">{branch.data?.branch_name}</span>
          </>
        }
        actions={
          <>
            {branch.data && (
              <Link href={`/projects/${branch.data.project_id}/members`} className="btn">
                Members
              </Link>
            )}
            {canMaintain && (
              <Link href={`/branches/${id}/stages/new`} className="btn">
                + Stage
              </Link>
            )}
            {allows(role, "member") && (
              <button
                className="btn primary"
                onClick={() => setRunning(true)}
                disabled={!stages.data?.length || !!archived}
                title={archived ? "archived: no new flows" : stages.data?.length ? "" : "add a stage first"}
              >
                ▷ Run flow
              </button>
            )}
          </>
        }
      >
        {branch.data?.repo_url && <div className="muted mono small">{branch.data.repo_url}</div>}
        {archived && (
          <div className="notice" data-testid="archived-notice">
            {branch.data?.archived ? "This branch is archived" : "Its project is archived"}: no flow starts and its triggers do not fire.
          </div>
        )}
      </PageHeader>
      <nav className="tabs" role="tablist">
        {tabs.map(([key, label, href]) => (
          <Link key={key} href={href} role="tab" aria-selected={tab === key} className={tab === key ? "tab active" : "tab"}>
            {label}
          </Link>
        ))}
      </nav>
      {tab === "stages" ? (
        <StagesList branchId={id} />
      ) : tab === "charts" ? (
        <BranchCharts branchId={id} />
      ) : tab === "settings" && canMaintain ? (
        branch.data ? <BranchSettings branch={branch.data} /> : <Skeleton rows={6} />
      ) : (
        <FlowsTable key={kind} branchId={id} kind={kind} />
      )}
      <Dialog open={running} onClose={() => setRunning(false)} title="Run flow">
        <RunFlowForm branchId={id} defaultKind={kind} onClose={() => setRunning(false)} />
      </Dialog>
    </>
  );
}
