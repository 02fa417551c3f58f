import { describe, expect, it } from "vitest";
import { flowParameters } from "./Branch";
import { historyGrid } from "./TestCase";
import { agentStatus } from "./Agents";
import { causesLabel, firstSeenHref } from "./FailureGroups";
import type { HistoryItem, Stage } from "../api/types";

describe("flowParameters", () => {
  it("merges the enabled stages' parameters by name", () => {
    const stages = [
      { name: "build", enabled: true, schema: { parameters: [{ name: "cc", type: "string", default: "gcc" }] } },
      { name: "test", enabled: true, schema: { parameters: [{ name: "cc", type: "string" }, { name: "n", type: "integer", default: 2 }] } },
      { name: "off", enabled: false, schema: { parameters: [{ name: "x", type: "string" }] } },
    ] as unknown as Stage[];
    expect(flowParameters(stages).map((p) => [p.name, p.stages.join("+")])).toEqual([
      ["cc", "build+test"],
      ["n", "test"],
    ]);
  });
});

describe("historyGrid", () => {
  const h = (id: number, flow: number, system: string, status: string): HistoryItem =>
    ({ id, flow_id: flow, flow_seq: flow, flow_kind: "ci", run_id: flow * 10, system, config: null, status, change: "none", values: null }) as unknown as HistoryItem;
  it("puts flows in columns, oldest first, and environments in rows", () => {
    // the API gives newest first
    const g = historyGrid([h(6, 3, "linux", "failed"), h(5, 2, "win", "passed"), h(4, 2, "linux", "passed"), h(1, 1, "linux", "passed")]);
    expect(g.flows.map((f) => f.label)).toEqual(["CI #1", "CI #2", "CI #3"]);
    expect(g.envs.map((e) => e.label)).toEqual(["linux", "win"]);
    expect(g.cells.map((row) => row.map((c) => c?.status ?? null))).toEqual([
      ["passed", "passed", "failed"],
      [null, "passed", null],
    ]);
  });
});

describe("agentStatus", () => {
  const base = { approved: true, enrolled: true, enabled: true, online: true, current_job_id: null };
  it("puts enrollment before presence", () => {
    expect(agentStatus({ ...base, approved: false })).toBe("pending");
    expect(agentStatus({ ...base, approved: false, enrolled: false })).toBe("revoked");
    expect(agentStatus({ ...base, enabled: false })).toBe("disabled");
    expect(agentStatus({ ...base, current_job_id: 3 })).toBe("busy");
    expect(agentStatus({ ...base, online: false })).toBe("offline");
    expect(agentStatus(base)).toBe("online");
  });
});

describe("failure groups", () => {
  it("says how many failures and causes", () => {
    expect(causesLabel({ failures: 312, causes: 3, unkeyed: 0 })).toBe("312 failures, 3 causes");
    expect(causesLabel({ failures: 1, causes: 1, unkeyed: 0 })).toBe("1 failure, 1 cause");
    expect(causesLabel({ failures: 5, causes: 1, unkeyed: 2 })).toBe("5 failures, 1 cause (2 without a signature)");
  });
  it("links a known cause to the run where it first appeared", () => {
    expect(firstSeenHref({ first_seen: { flow_id: 3, flow_seq: 2, run_id: 9, count: 4 } })).toBe("/runs/9/results?view=groups");
    expect(firstSeenHref({ first_seen: null })).toBeNull();
  });
});
