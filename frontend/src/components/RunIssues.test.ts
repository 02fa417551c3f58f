import { describe, expect, it } from "vitest";
import { issuePlace } from "./RunIssues";

describe("issuePlace", () => {
  it("gives path:line, and the column when there is one", () => {
    expect(issuePlace({ path: "a.py", line: 3, column: 7 })).toBe("a.py:3:7");
    expect(issuePlace({ path: "a.py", line: 3, column: 0 })).toBe("a.py:3");
  });
});
