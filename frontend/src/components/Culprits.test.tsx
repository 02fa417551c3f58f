import { describe, expect, it } from "vitest";
import { render } from "@testing-library/react";
import { CulpritLine, type CulpritSearch, culpritOf } from "./Culprits";

const base: CulpritSearch = {
  id: 1,
  tests: ["tests.test_calc::test_add"],
  good_commit: "a".repeat(40),
  bad_commit: "b".repeat(40),
  culprit: null,
  culprit_commit: null,
  state: "bisecting",
  reason: null,
  flows: [7],
  range_commits: 17,
  created: "2026-12-01T00:00:00Z",
  finished: null,
};

describe("CulpritLine", () => {
  it("names the culprit with its author and message", () => {
    const s: CulpritSearch = {
      ...base,
      state: "found",
      culprit: "c".repeat(40),
      culprit_commit: { id: "c".repeat(40), author: "Ann", message: "breaks add" },
      flows: [7, 8],
    };
    const { container } = render(<CulpritLine s={s} />);
    expect(container.textContent).toBe("broken by cccccccccc (Ann) breaks add · 2 bisection flows");
  });

  it("shows the range and the reason while no culprit is named", () => {
    const { container } = render(<CulpritLine s={{ ...base, state: "failed", reason: "the repository cannot be read" }} />);
    expect(container.textContent).toBe("failed: aaaaaaaaaa..bbbbbbbbbb (17 commits) – the repository cannot be read");
  });

  it("finds a test's search", () => {
    expect(culpritOf([base], "tests.test_calc::test_add")?.id).toBe(1);
    expect(culpritOf([base], "other")).toBeUndefined();
  });
});
