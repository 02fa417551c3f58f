import { describe, expect, it } from "vitest";
import { qk } from "./queryKeys";

describe("query keys", () => {
  it("leave out trailing arguments, so that a shorter key is a prefix of the longer ones", () => {
    expect(qk.results()).toEqual(["results"]);
    expect(qk.results(7)).toEqual(["results", 7]);
    expect(qk.results(7, { q: "x" })).toEqual(["results", 7, { q: "x" }]);
    expect(qk.flows(9)).toEqual(["flows", 9]);
    expect(qk.flows(9, "ci", 0, 25)).toEqual(["flows", 9, "ci", 0, 25]);
    expect(qk.history(5, undefined, 200)).toEqual(["history", 5, undefined, 200]);
  });
});
