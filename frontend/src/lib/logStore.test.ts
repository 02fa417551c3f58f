import { describe, expect, it } from "vitest";
import { LogStore } from "./logStore";

describe("LogStore", () => {
  it("appends, skipping lines it already has", () => {
    const s = new LogStore();
    s.append(0, ["a", "b"]);
    s.append(1, ["b", "c"]);
    s.append(3, ["d"]);
    expect(s.lines).toEqual(["a", "b", "c", "d"]);
    expect(s.end).toBe(4);
  });
  it("bounds memory by dropping the oldest lines, numbers kept", () => {
    const s = new LogStore(100_000);
    const chunk = Array.from({ length: 1000 }, (_, i) => `line ${i}`);
    for (let i = 0; i < 200; i++) s.append(i * 1000, chunk);
    expect(s.lines.length).toBeLessThanOrEqual(100_000);
    expect(s.end).toBe(200_000);
    expect(s.dropped).toBe(200_000 - s.lines.length);
    expect(s.line(199_999)).toBe("line 999");
    expect(s.line(0)).toBeUndefined();
  });
  it("searches without escape sequences, case-insensitively", () => {
    const s = new LogStore();
    s.append(0, ["\x1b[31mFAIL\x1b[0med test_x", "ok", "failed again", "F\x1b[0mAIL split"]);
    expect(s.search("failed")).toEqual([0, 2]);
    expect(s.search("fail split")).toEqual([3]);
    expect(s.search("")).toEqual([]);
  });
  it("records where steps start when the stream says", () => {
    const s = new LogStore();
    s.append(0, ["$ git clone"], 0);
    s.append(1, ["more"], 0);
    s.append(2, ["$ make"], 1);
    expect([...s.stepStarts]).toEqual([
      [0, 0],
      [1, 2],
    ]);
  });
});
