/** Server state: one hook per resource; their query keys are in lib/queryKeys.ts. */
import { keepPreviousData, useInfiniteQuery, useQuery } from "@tanstack/react-query";
import { qk } from "../lib/queryKeys";
import { client, unwrap } from "./client";
import type { paths } from "./schema";
import type {
  Agent,
  Branch,
  Flow,
  FlowPage,
  Job,
  Project,
  ResultsSummary,
  Run,
  Stage,
  User,
} from "./types";

export const useMe = () =>
  useQuery({ queryKey: qk.me(), queryFn: () => unwrap<User>(client.GET("/api/auth/me")), staleTime: 5 * 60_000 });

export const useProjects = (includeArchived = false) =>
  useQuery({
    queryKey: qk.projects(includeArchived),
    queryFn: () => unwrap<Project[]>(client.GET("/api/projects", { params: { query: { include_archived: includeArchived } } })),
  });

export const useProject = (id: number | undefined) =>
  useQuery({
    queryKey: qk.project(id),
    enabled: id !== undefined,
    staleTime: 60_000,
    queryFn: () => unwrap<Project>(client.GET("/api/projects/{project_id}", { params: { path: { project_id: id! } } })),
  });

export const useBranch = (id: number | undefined) =>
  useQuery({
    queryKey: qk.branch(id),
    enabled: id !== undefined,
    queryFn: () => unwrap<Branch>(client.GET("/api/branches/{branch_id}", { params: { path: { branch_id: id! } } })),
    staleTime: 60_000,
  });

export const useStages = (branchId: number | undefined) =>
  useQuery({
    queryKey: qk.stages(branchId),
    enabled: branchId !== undefined,
    queryFn: () =>
      unwrap<Stage[]>(client.GET("/api/branches/{branch_id}/stages", { params: { path: { branch_id: branchId! } } })),
  });

export const useStage = (id: number | undefined) =>
  useQuery({
    queryKey: qk.stage(id),
    enabled: id !== undefined,
    queryFn: () => unwrap<Stage>(client.GET("/api/stages/{stage_id}", { params: { path: { stage_id: id! } } })),
  });

export const useFlows = (branchId: number, kind: "ci" | "dev", page: number, limit = 25) =>
  useQuery({
    queryKey: qk.flows(branchId, kind, page, limit),
    placeholderData: keepPreviousData,
    queryFn: () =>
      unwrap<FlowPage>(
        client.GET("/api/branches/{branch_id}/flows", {
          params: { path: { branch_id: branchId }, query: { kind, limit, offset: page * limit } },
        }),
      ),
  });

/** The latest CI flow of a branch and its test summary (projects overview). */
export const useLatestFlow = (branchId: number) =>
  useQuery({
    queryKey: qk.latest(branchId),
    queryFn: async () => {
      const page = await unwrap<FlowPage>(
        client.GET("/api/branches/{branch_id}/flows", {
          params: { path: { branch_id: branchId }, query: { kind: "ci", limit: 1 } },
        }),
      );
      const flow = page.items[0] ?? null;
      let summary: ResultsSummary | null = null;
      if (flow && flow.state === "completed") summary = await flowSummary(flow.id).catch(() => null);
      return { flow, summary, total: page.total };
    },
  });

export const flowSummary = (id: number) =>
  unwrap(client.GET("/api/flows/{flow_id}/summary", { params: { path: { flow_id: id } } }));

export const useFlowSummary = (id: number, enabled = true) =>
  useQuery({ queryKey: qk.flowSummary(id), enabled, queryFn: () => flowSummary(id), retry: false });

export const useFlow = (id: number | undefined) =>
  useQuery({
    queryKey: qk.flow(id),
    enabled: id !== undefined,
    queryFn: () => unwrap<Flow>(client.GET("/api/flows/{flow_id}", { params: { path: { flow_id: id! } } })),
  });

export const useRun = (id: number | undefined) =>
  useQuery({
    queryKey: qk.run(id),
    enabled: id !== undefined,
    queryFn: () => unwrap<Run>(client.GET("/api/runs/{run_id}", { params: { path: { run_id: id! } } })),
  });

export const useJobs = (runId: number | undefined) =>
  useQuery({
    queryKey: qk.jobs(runId),
    enabled: runId !== undefined,
    queryFn: () =>
      unwrap<Job[]>(client.GET("/api/runs/{run_id}/jobs", { params: { path: { run_id: runId!, }, query: { include_covered: true } } })),
  });

export const useJob = (id: number) =>
  useQuery({
    queryKey: qk.job(id),
    queryFn: () => unwrap<Job>(client.GET("/api/jobs/{job_id}", { params: { path: { job_id: id } } })),
  });

export const useAgents = () =>
  useQuery({ queryKey: qk.agents(), queryFn: () => unwrap<Agent[]>(client.GET("/api/agents")) });

export const useAgentGroups = () =>
  useQuery({ queryKey: qk.agentGroups(), queryFn: () => unwrap<string[]>(client.GET("/api/agent-groups")) });

/** A run's forced re-analysis: the event "reanalysis" refreshes it. */
export const useReanalysis = (runId: number) =>
  useQuery({
    queryKey: qk.reanalysis(runId),
    retry: false,
    queryFn: () => unwrap(client.GET("/api/runs/{run_id}/reanalysis", { params: { path: { run_id: runId } } })),
  });

export const useRunSummary = (runId: number, enabled = true) =>
  useQuery({
    queryKey: qk.summary(runId),
    enabled,
    retry: false,
    queryFn: () =>
      unwrap(client.GET("/api/runs/{run_id}/summary", { params: { path: { run_id: runId } } })),
  });

/** The filters and sort order of a run's results (the query of GET /api/runs/{run_id}/results). */
export type ResultSort = NonNullable<NonNullable<paths["/api/runs/{run_id}/results"]["get"]["parameters"]["query"]>["sort"]>;

const RESULT_SORTS: readonly ResultSort[] = ["relevancy", "id", "-id", "-duration"];

/** The sort order a filter names (from the page's URL), relevancy when it names none the API knows. */
export const resultSort = (sort: string | undefined): ResultSort =>
  RESULT_SORTS.find((s) => s === sort) ?? "relevancy";

export interface ResultFilters {
  status?: string;
  change?: string;
  flaky?: boolean;
  q?: string;
  job_id?: number;
  sort?: string;
  age_min?: number;
  age_max?: number;
  instability_min?: number;
  instability_max?: number;
  agents_group?: string;
}

export const RESULTS_PAGE = 200;

export const useResults = (runId: number, f: ResultFilters) =>
  useInfiniteQuery({
    queryKey: qk.results(runId, f),
    initialPageParam: null as string | null,
    placeholderData: keepPreviousData,
    retry: false,
    queryFn: ({ pageParam, signal }) =>
      unwrap(
        client.GET("/api/runs/{run_id}/results", {
          signal,
          params: {
            path: { run_id: runId },
            query: {
              status: f.status || undefined,
              change: f.change || undefined,
              flaky: f.flaky,
              q: f.q || undefined,
              job_id: f.job_id,
              age_min: f.age_min,
              age_max: f.age_max,
              instability_min: f.instability_min,
              instability_max: f.instability_max,
              agents_group: f.agents_group || undefined,
              sort: resultSort(f.sort),
              limit: pageParam ? RESULTS_PAGE : 100,
              cursor: pageParam ?? undefined,
            },
          },
        }),
      ),
    getNextPageParam: (last) => last.next_cursor,
  });

/** A run's failures grouped by cause (kept under the run's results key: the "results" event refreshes it). */
export const useFailureGroups = (runId: number, enabled = true, tests = 20) =>
  useQuery({
    queryKey: qk.results(runId, { groups: tests }),
    enabled,
    retry: false,
    queryFn: () =>
      unwrap(
        client.GET("/api/runs/{run_id}/failure-groups", { params: { path: { run_id: runId }, query: { tests, limit: 200 } } }),
      ),
  });

/** A run's linter issues, new ones first, then by age (youngest first), page by page. */
export const useRunIssues = (runId: number, newOnly: boolean) =>
  useInfiniteQuery({
    queryKey: qk.issues(runId, { sort: "new", newOnly }),
    retry: false,
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam, signal }) =>
      unwrap(
        client.GET("/api/runs/{run_id}/issues", {
          signal,
          params: { path: { run_id: runId }, query: { sort: "new", limit: 200, cursor: pageParam, ...(newOnly ? { new: true } : {}) } },
        }),
      ),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });

/** A run's artifacts, by path. */
export const useRunArtifacts = (runId: number) =>
  useQuery({
    queryKey: qk.runArtifacts(runId),
    retry: false,
    queryFn: () => unwrap(client.GET("/api/runs/{run_id}/artifacts", { params: { path: { run_id: runId } } })),
  });

/** All the failures of one cause, page by page (by result id). */
export const useFailureGroupTests = (runId: number, key: string, enabled: boolean) =>
  useInfiniteQuery({
    queryKey: qk.results(runId, { group: key }),
    enabled,
    retry: false,
    initialPageParam: 0,
    queryFn: ({ pageParam, signal }) =>
      unwrap(
        client.GET("/api/runs/{run_id}/failure-groups/{key}/tests", {
          signal,
          params: { path: { run_id: runId, key }, query: { after: pageParam, limit: 200 } },
        }),
      ),
    getNextPageParam: (last) => last.next_after ?? undefined,
  });

export const useTestHistory = (id: number, branchId: number | undefined, limit = 200) =>
  useQuery({
    queryKey: qk.history(id, branchId, limit),
    retry: false,
    queryFn: () =>
      unwrap(
        client.GET("/api/test-cases/{test_case_id}/history", {
          params: { path: { test_case_id: id }, query: { branch_id: branchId, limit } },
        }),
      ),
  });

/** A branch's figures over its last ``limit`` CI flows, oldest first (the branch's charts). */
export const useBranchStats = (branchId: number, limit: number) =>
  useQuery({
    queryKey: qk.branchStats(branchId, limit),
    queryFn: ({ signal }) =>
      unwrap(client.GET("/api/branches/{branch_id}/stats", { signal, params: { path: { branch_id: branchId }, query: { limit } } })),
  });
