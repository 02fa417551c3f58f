/** Names for the API's shapes. Everything typed by the server's OpenAPI comes from schema.d.ts;
 * the results routes (kraken/api/routes/results.py) return untyped JSON objects, so their shapes
 * are written out here, field for field as that router builds them. */
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

export type TestStatus = "passed" | "failed" | "error" | "skipped" | "disabled" | "not-run";
export type TestChange = "none" | "new" | "fix" | "regression";

export interface TestResult {
  id: number;
  test: string;
  test_case_id: number;
  status: TestStatus;
  change: TestChange;
  age: number | null;
  instability: number | null;
  flaky: boolean;
  flaky_rules: string[];
  relevancy: number | null;
  duration: number | null;
  job_id: number;
  system: string | null;
  agents_group: string | null;
  config: string | null;
  message: string | null;
  values: Record<string, number> | null;
  perf_change: "regression" | "improvement" | null;
}

export interface ResultsPage {
  total: number;
  items: TestResult[];
  next_cursor: string | null;
}

export interface ResultsSummary {
  total: number;
  passed: number;
  failed: number;
  error: number;
  skipped: number;
  disabled: number;
  "not-run": number;
  new: number;
  fixes: number;
  regressions: number;
  no_change: number;
  flaky: number;
  perf_regressions: number;
  perf_improvements: number;
  issues: number;
  new_issues: number;
  /** "pending" while results are still being analysed, "none" when the run has none. */
  analysis: "pending" | "done" | "none";
  pending_results?: number;
  received?: number;
  jobs?: { job_id: number; analysis: string; total: number; failed: number; regressions: number }[];
}

export interface HistoryItem {
  id: number;
  flow_id: number;
  flow_kind: "ci" | "dev";
  flow_seq: number | null;
  run_id: number;
  job_id: number;
  branch_id: number;
  status: TestStatus;
  change: TestChange;
  age: number | null;
  instability: number | null;
  flaky: boolean;
  flaky_rules: string[];
  duration: number | null;
  values: Record<string, number> | null;
  perf_change: string | null;
  perf: unknown;
  system: string | null;
  agents_group: string | null;
  config: string | null;
}

export interface TestHistory {
  test_case: { id: number; project_id: number; name: string };
  items: HistoryItem[];
}

/** Events of GET /api/events (named by kind). */
export type LiveEvent =
  | { kind: "flow"; id: number; branch_id: number; state: State; result: Outcome | null; created?: boolean }
  | { kind: "run"; id: number; flow_id: number; state: State; result: Outcome | null; created?: boolean }
  | { kind: "job"; id: number; run_id: number; state: State; result: Outcome | null; created?: boolean; agent_name?: string; reason?: string | null }
  | { kind: "step"; job_id: number; index: number; state: State; result: Outcome | null }
  | { kind: "agent"; id: number; online?: boolean; enabled?: boolean }
  /** not sent yet: proposed for when a job's test results are analysed */
  | { kind: "results"; run_id?: number; flow_id?: number; job_id?: number };
