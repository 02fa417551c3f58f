import { describe, expect, it } from "vitest";
import { fireEvent, render, screen } from "@testing-library/react";
import { layoutStages, StageGraph } from "./StageGraph";
import type { RunBrief } from "../api/types";

const run = (id: number, stage: string, state = "completed", result: string | null = "passed"): RunBrief => ({
  id,
  stage_name: stage,
  seq: id,
  state,
  result,
  reason: null,
  created: "2024-01-01T00:00:00Z",
  started: "2024-01-01T00:00:00Z",
  finished: state === "completed" ? "2024-01-01T00:01:00Z" : null,
  jobs_total: 1,
  tests_quarantined: 0,
});

const stages = [
  { name: "build", parent: "root", enabled: true },
  { name: "unit", parent: "build", enabled: true },
  { name: "lint", parent: "build", enabled: true },
  { name: "deploy", parent: "unit", enabled: true },
  { name: "docs", parent: "root", enabled: true },
  { name: "old", parent: "root", enabled: false },
];

describe("layoutStages", () => {
  it("lays the stage tree out left to right, parents centred on their children", () => {
    const nodes = layoutStages(stages, [run(1, "build"), run(2, "unit"), run(3, "lint")]);
    const at = Object.fromEntries(nodes.map((n) => [n.name, [n.depth, n.row]]));
    expect(at).toEqual({ build: [0, 0.5], unit: [1, 0], deploy: [2, 0], lint: [1, 1], docs: [0, 2] });
  });
  it("shows a disabled stage only when it ran, and orphans as roots", () => {
    const nodes = layoutStages([{ name: "child", parent: "gone", enabled: true }, ...stages.slice(5)], [run(1, "old")]);
    expect(nodes.map((n) => [n.name, n.depth])).toEqual([
      ["old", 0],
      ["child", 0],
    ]);
  });
});

describe("StageGraph", () => {
  it("shows each stage's state and selects a run", () => {
    let picked = 0;
    render(<StageGraph stages={stages} runs={[run(1, "build"), run(2, "unit", "running", null)]} selectedRun={2} onSelect={(r) => (picked = r.id)} />);
    expect(screen.getByTestId("stage-node-build").textContent).toContain("passed");
    expect(screen.getByTestId("stage-node-unit").textContent).toContain("running");
    expect(screen.getByTestId("stage-node-unit").className).toContain("selected");
    expect(screen.getByTestId("stage-node-lint").textContent).toContain("not started");
    fireEvent.click(screen.getByTestId("stage-node-build"));
    expect(picked).toBe(1);
  });
});
