import { describe, expect, it } from "vitest";
import { envLines, parseEnvLines } from "./BranchSettings";
import { firstLine, shortSha } from "../components/Commits";

describe("branch environment variables", () => {
  it("reads NAME=value lines, skipping blanks and comments, keeping '=' in values", () => {
    expect(parseEnvLines("A=1\n\n# note\n B = x=y\n")).toEqual({ A: "1", B: " x=y" });
  });
  it("names the line that is not NAME=value", () => {
    expect(() => parseEnvLines("A=1\noops")).toThrow("line 2");
    expect(() => parseEnvLines("=v")).toThrow("line 1");
  });
  it("writes them back one a line", () => {
    expect(envLines({ A: "1", B: "2" })).toBe("A=1\nB=2");
    expect(envLines(undefined)).toBe("");
  });
});

describe("commits", () => {
  it("shortens shas and messages", () => {
    expect(shortSha("0123456789abcdef")).toBe("0123456789");
    expect(firstLine("subject\n\nbody")).toBe("subject");
    expect(firstLine(null)).toBe("");
  });
});
