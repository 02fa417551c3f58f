import { describe, expect, it } from "vitest";
import { seconds } from "./Diagnostics";

describe("seconds", () => {
  it("reads durations at the right scale", () => {
    expect(seconds(null)).toBe("never");
    expect(seconds(0.0123)).toBe("12 ms");
    expect(seconds(3.25)).toBe("3.3 s");
    expect(seconds(600)).toBe("10 min");
    expect(seconds(5 * 3600)).toBe("5.0 h");
  });
});
