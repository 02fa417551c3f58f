import { describe, expect, it } from "vitest";
import type { Job } from "../api/types";
import { splitGroups } from "./SplitParts";

const job = (id: number, name: string, split: Job["split"], covered = false) => ({ id, name, split, covered }) as unknown as Job;

describe("splitGroups", () => {
  it("groups the parts of each split job, in part order, without replaced jobs", () => {
    const groups = splitGroups([
      job(1, "unit [2/2]", { part: 2, parts: 2, group: "unit" }),
      job(2, "lint", null),
      job(3, "unit [1/2]", { part: 1, parts: 2, group: "unit" }),
      job(4, "unit [1/2]", { part: 1, parts: 2, group: "unit" }, true),
    ]);
    expect(groups.map((g) => [g.name, g.parts.map((p) => p.id)])).toEqual([["unit", [3, 1]]]);
  });
});
