/** Names for the API's shapes. Every route's answer is typed by the server's OpenAPI and comes from
 * schema.d.ts (`npm run gen:api`); written out here are only what OpenAPI does not describe: the
 * stage schema's fields (a free-form object in the API), the 422 body of the stage checker and the
 * events of GET /api/events (server-sent events). */
import type { components } from "./schema";

type S = components["schemas"];
export type Project = S["ProjectOut"];
export type Branch = S["BranchOut"];
export type Stage = S["StageOut"] & { schema?: StageSchema };
export type Flow = S["FlowOut"];
export type FlowPage = S["FlowPage"];
export type RunBrief = S["RunBrief"];
export type Run = S["RunOut"];
export type Job = S["JobOut"];
export type Step = S["StepOut"];
export type Agent = S["AgentOut"];
export type User = S["UserOut"];

export type State = "queued" | "running" | "completed";
export type Outcome = "passed" | "failed" | "error" | "cancelled" | "timeout";

export interface StageParameter {
  name: string;
  type: "string" | "integer" | "number" | "boolean";
  description?: string;
  default?: string | number | boolean;
}

export interface StageSchema {
  parent?: string;
  triggers?: Record<string, unknown>;
  parameters?: StageParameter[];
  configs?: { name: string; [k: string]: unknown }[];
  jobs?: { name: string; [k: string]: unknown }[];
  [k: string]: unknown;
}

/** 422 body of stage create/update/check: where in the code the schema is wrong. */
export interface StageError {
  message: string;
  line?: number | null;
  column?: number | null;
  path?: string | null;
}

export type TestResult = S["TestResultOut"];
export type ResultsPage = S["ResultsPage"];
/** A run's or a flow's summary (the fields both have). */
export type ResultsSummary = Omit<S["RunSummaryOut"], "run_id">;
export type FailureGroups = S["FailureGroupsOut"];
export type FailureGroup = S["FailureGroupOut"];
export type Issue = S["IssueOut"];
export type Artifact = S["ArtifactOut"];
export type FailureTest = S["FailureTestOut"];
export type HistoryItem = S["HistoryItemOut"];
export type BranchFlowStats = S["BranchFlowStatsOut"];
export type TestHistory = S["TestHistoryOut"];
export type Reanalysis = S["ReanalysisOut"];
export type TestStatus = TestResult["status"];
export type TestChange = TestResult["change"];

/** Events of GET /api/events (named by kind). */
export type LiveEvent =
  | { kind: "flow"; id: number; branch_id: number; state: State; result: Outcome | null; created?: boolean }
  | { kind: "run"; id: number; flow_id: number; state: State; result: Outcome | null; created?: boolean }
  | { kind: "job"; id: number; run_id: number; state: State; result: Outcome | null; created?: boolean; agent_name?: string; reason?: string | null }
  | { kind: "step"; job_id: number; index: number; state: State; result: Outcome | null }
  | { kind: "agent"; id: number; online?: boolean; enabled?: boolean }
  /** a job's test results are analysed (kraken/results/analysis.py) */
  | { kind: "results"; job_id: number; run_id: number; flow_id: number }
  /** a run's forced re-analysis changed state (kraken/results/reanalysis.py) */
  | { kind: "reanalysis"; run_id: number; state: Reanalysis["state"]; generation: number; version: number };
