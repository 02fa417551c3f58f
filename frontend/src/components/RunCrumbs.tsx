import { useBranch, useFlow, useProject, useRun } from "../api/queries";
import type { Crumb } from "./Layout";

/** Breadcrumbs down to a run: projects / project / branch / flow / stage. */
export function useRunCrumbs(runId: number | undefined): { crumbs: Crumb[]; branchId?: number } {
  const run = useRun(runId);
  const flow = useFlow(run.data?.flow_id);
  const branch = useBranch(flow.data?.branch_id);
  const project = useProject(branch.data?.project_id);
  const f = flow.data;
  return {
    branchId: f?.branch_id,
    crumbs: [
      { label: "Projects", href: "/" },
      { label: project.data?.name ?? "…" },
      { label: branch.data?.name ?? "…", href: f ? `/branches/${f.branch_id}` : undefined },
      { label: f ? `flow ${f.kind.toUpperCase()} #${f.seq}` : "…", href: f ? `/flows/${f.id}` : undefined },
      { label: run.data?.stage_name ?? "…", href: f && runId ? `/flows/${f.id}?run=${runId}` : undefined },
    ],
  };
}
