import { describe, expect, it } from "vitest";
import { errorLine } from "./stageError";

const CODE = 'def stage(ctx):\n    return {\n        "jobs": [{\n            "name": "x",\n            "steps": [],\n        }],\n    }\n';

describe("errorLine", () => {
  it("uses the server's line and column", () => {
    expect(errorLine({ message: "syntax", line: 3, column: 31 }, CODE)).toEqual({ line: 3, column: 31, approx: false });
  });
  it("finds a schema path's key in the code", () => {
    expect(errorLine({ message: "must not be empty", path: "jobs[0].steps" }, CODE)).toEqual({ line: 5, column: null, approx: true });
    expect(errorLine({ message: "?", path: "jobs[0].nothing" }, CODE)).toEqual({ line: 3, column: null, approx: true });
  });
  it("gives up without a place", () => {
    expect(errorLine({ message: "boom" }, CODE)).toBeNull();
  });
});
