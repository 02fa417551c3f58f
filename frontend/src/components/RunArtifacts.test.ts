import { describe, expect, it } from "vitest";
import { reportUrl } from "./RunArtifacts";

describe("reportUrl", () => {
  it("puts the stream token in the path, before the entry's base name", () => {
    expect(reportUrl({ id: 7, run_id: 3, path: "r/cov/index.html" }, "a.b")).toBe("/api/runs/3/reports/7/a.b/index.html");
    expect(reportUrl({ id: 7, run_id: 3, path: "my report.html" }, null)).toBe("/api/runs/3/reports/7/-/my%20report.html");
  });
});
