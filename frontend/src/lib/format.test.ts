import { describe, expect, it } from "vitest";
import { duration, formatBytes, formatCount, formatSeconds, plural, timeAgo } from "./format";

describe("format", () => {
  it("formats seconds", () => {
    expect(formatSeconds(0.42)).toBe("420 ms");
    expect(formatSeconds(4.25)).toBe("4.3s");
    expect(formatSeconds(75)).toBe("1m 15s");
    expect(formatSeconds(4000)).toBe("1h 6m");
    expect(formatSeconds(null)).toBe("–");
  });
  it("computes durations, running ones until now", () => {
    expect(duration("2024-01-01T00:00:00Z", "2024-01-01T00:01:30Z")).toBe(90);
    expect(duration("2024-01-01T00:00:00Z", null, Date.parse("2024-01-01T00:00:05Z"))).toBe(5);
    expect(duration(null, null)).toBeNull();
  });
  it("says how long ago", () => {
    const now = Date.parse("2024-01-02T00:00:00Z");
    expect(timeAgo("2024-01-01T23:59:58Z", now)).toBe("just now");
    expect(timeAgo("2024-01-01T23:55:00Z", now)).toBe("5 min ago");
    expect(timeAgo("2023-12-30T00:00:00Z", now)).toBe("3 d ago");
  });
  it("counts", () => {
    expect(formatCount(100000)).toBe("100\u202f000");
    expect(plural(1, "test")).toBe("1 test");
    expect(plural(2, "test")).toBe("2 tests");
  });
});

describe("formatBytes", () => {
  it("uses binary units with one decimal below 10", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1023)).toBe("1023 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(50 * 1024 * 1024)).toBe("50 MiB");
    expect(formatBytes(null)).toBe("–");
  });
});
