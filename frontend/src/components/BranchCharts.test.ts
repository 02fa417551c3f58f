import { describe, expect, it } from "vitest";
import type { BranchFlowStats } from "../api/types";
import { chartSeries } from "./BranchCharts";

const flow = (o: Partial<BranchFlowStats>): BranchFlowStats => ({
  flow_id: 1,
  seq: 1,
  label: null,
  state: "completed",
  created: "2026-12-01T00:00:00Z",
  duration: 12.5,
  total: 10,
  passed: 8,
  failed: 2,
  regressions: 1,
  fixes: 0,
  flaky: 1,
  pass_ratio: 0.8,
  analysis: "done",
  ...o,
});

describe("branch charts", () => {
  it("draw the pass ratio in percent and leave gaps where a flow has no tests or no end", () => {
    const s = chartSeries([flow({}), flow({ total: 0, passed: 0, failed: 0, regressions: 0, flaky: 0, pass_ratio: null, duration: null })]);
    expect(s.ratio[0].values).toEqual([80, null]);
    expect(s.counts.map((c) => [c.label, c.values])).toEqual([
      ["failures", [2, null]],
      ["regressions", [1, null]],
      ["flaky", [1, null]],
    ]);
    expect(s.duration[0].values).toEqual([12.5, null]);
  });
});
