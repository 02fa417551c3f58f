import { describe, expect, it } from "vitest";
import { segments } from "./highlight";

describe("segments", () => {
  it("marks the spans and keeps the rest", () => {
    expect(segments("ERROR: ConnectTimeoutError", [[14, 21]])).toEqual([
      { text: "ERROR: Connect", mark: false },
      { text: "Timeout", mark: true },
      { text: "Error", mark: false },
    ]);
  });
  it("survives overlapping, unordered and out-of-range spans", () => {
    expect(segments("abcdef", [[4, 9], [0, 2], [1, 3]])).toEqual([
      { text: "ab", mark: true },
      { text: "c", mark: true },
      { text: "d", mark: false },
      { text: "ef", mark: true },
    ]);
    expect(segments("", [])).toEqual([]);
  });
});
