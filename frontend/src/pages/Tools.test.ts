import { describe, expect, it } from "vitest";
import type { components } from "../api/schema";
import { byName } from "./Tools";

type Tool = components["schemas"]["ToolOut"];

const tool = (id: number, name: string, version: string): Tool => ({
  id,
  name,
  version,
  description: "",
  fields_schema: {},
  entry: "run.py",
  digest: "0".repeat(64),
  size: 1,
  source: "archive",
  created: "2026-12-01T00:00:00Z",
});

describe("byName", () => {
  it("groups versions by tool, in registration order", () => {
    const groups = byName([tool(1, "a", "1"), tool(2, "b", "1"), tool(3, "a", "2")]);
    expect(groups.map(([n, v]) => [n, v.map((t) => t.version)])).toEqual([
      ["a", ["1", "2"]],
      ["b", ["1"]],
    ]);
  });
});
