/**
 * Every query key of the UI, in one place: the hooks of api/queries.ts read with them, lib/live.ts
 * and the pages' mutations invalidate and update with them. A key without its last arguments is a
 * prefix that matches every query under it: `qk.results()` is every run's results, `qk.results(7)`
 * run 7's (whatever the filters).
 */
type Part = string | number | boolean | object | null | undefined;

/** The key's parts up to the last one given (a trailing undefined would not match as a prefix). */
function key<N extends string>(name: N, ...parts: Part[]): readonly [N, ...Part[]] {
  let n = parts.length;
  while (n > 0 && parts[n - 1] === undefined) n--;
  return [name, ...parts.slice(0, n)] as const;
}

export const qk = {
  me: () => key("me"),
  agentToken: () => key("agentToken"),
  users: () => key("users"),
  members: (projectId?: number) => key("members", projectId),
  tokens: () => key("tokens"),
  /** The projects list (with or without the archived ones). */
  projects: (includeArchived?: boolean) => key("projects", includeArchived),
  project: (id?: number) => key("project", id),
  branch: (id?: number) => key("branch", id),
  stages: (branchId?: number) => key("stages", branchId),
  stage: (id?: number) => key("stage", id),
  /** A branch's flow list pages. */
  flows: (branchId?: number, kind?: "ci" | "dev", page?: number, limit?: number) => key("flows", branchId, kind, page, limit),
  /** A branch's latest CI flow and its summary (projects overview). */
  latest: (branchId?: number) => key("latest", branchId),
  flow: (id?: number) => key("flow", id),
  flowSummary: (flowId?: number) => key("flowSummary", flowId),
  run: (id?: number) => key("run", id),
  /** A run's jobs. */
  jobs: (runId?: number) => key("jobs", runId),
  job: (id?: number) => key("job", id),
  agents: () => key("agents"),
  agentGroups: () => key("agentGroups"),
  /** A run's results summary. */
  summary: (runId?: number) => key("summary", runId),
  /** A run's forced re-analysis (queued, running, done, failed). */
  reanalysis: (runId?: number) => key("reanalysis", runId),
  /** A run's results pages, per filter. */
  results: (runId?: number, filters?: object) => key("results", runId, filters),
  /** A run's linter issues, per order and filter. */
  issues: (runId?: number, query?: object) => key("issues", runId, query),
  /** A run's artifacts. */
  runArtifacts: (runId?: number) => key("runArtifacts", runId),
  history: (testCaseId?: number, branchId?: number, limit?: number) => key("history", testCaseId, branchId, limit),
  comments: (testCaseId?: number, branchId?: number) => key("comments", testCaseId, branchId),
  /** A branch's quarantined tests. */
  quarantine: (branchId?: number) => key("quarantine", branchId),
  quarantineSettings: (branchId?: number) => key("quarantineSettings", branchId),
  /** A branch's figures over its last CI flows (its charts). */
  branchStats: (branchId?: number, limit?: number) => key("branchStats", branchId, limit),
};
