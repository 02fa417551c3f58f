import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { QueryClient } from "@tanstack/react-query";
import { Live } from "./live";
import { qk } from "./queryKeys";
import type { Job } from "../api/types";

const job = (id: number, run_id: number): Job =>
  ({ id, run_id, name: "j", state: "running", result: null, steps: [{ index: 0, tool: "shell", state: "running", result: null }] }) as unknown as Job;

describe("Live", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("patches step states into cached jobs at once", () => {
    const qc = new QueryClient();
    qc.setQueryData(["jobs", 5], [job(1, 5), job(2, 5)]);
    qc.setQueryData(["job", 1], job(1, 5));
    new Live(qc).handle({ kind: "step", job_id: 1, index: 0, state: "completed", result: "passed" });
    expect(qc.getQueryData<Job[]>(["jobs", 5])![0].steps![0].result).toBe("passed");
    expect(qc.getQueryData<Job[]>(["jobs", 5])![1].steps![0].result).toBeNull();
    expect(qc.getQueryData<Job>(["job", 1])!.steps![0].state).toBe("completed");
  });

  it("invalidates what an event changes, once per burst", async () => {
    const qc = new QueryClient();
    const spy = vi.spyOn(qc, "invalidateQueries");
    const live = new Live(qc);
    for (let i = 0; i < 50; i++) live.handle({ kind: "flow", id: 3, branch_id: 9, state: "running", result: null });
    live.handle({ kind: "job", id: 4, run_id: 7, state: "completed", result: "passed" });
    expect(spy).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(150);
    const keys = spy.mock.calls.map((c) => JSON.stringify((c[0] as { queryKey: unknown }).queryKey));
    expect(keys.sort()).toEqual(
      ['["agents"]', '["flow",3]', '["flows",9]', '["job",4]', '["jobs",7]', '["latest",9]', '["run",7]'].sort(),
    );
  });
  it("re-reads every query on resync (events were lost on the server's bus)", () => {
    const qc = new QueryClient();
    qc.setQueryData(["flow", 1], { id: 1 });
    qc.setQueryData(["agents"], []);
    new Live(qc).resync();
    expect(qc.getQueryState(["flow", 1])!.isInvalidated).toBe(true);
    expect(qc.getQueryState(["agents"])!.isInvalidated).toBe(true);
  });

  it("re-reads a run's results and summaries when its analysis is done, whatever the filters", async () => {
    const qc = new QueryClient();
    const filtered = [...qk.results(7, { status: "failed" })];
    const other = [...qk.results(8, { status: "failed" })];
    qc.setQueryData(filtered, { total: 1 });
    qc.setQueryData(other, { total: 2 });
    qc.setQueryData([...qk.summary(7)], { total: 1 });
    new Live(qc).handle({ kind: "results", job_id: 4, run_id: 7, flow_id: 3 });
    await vi.advanceTimersByTimeAsync(150);
    expect(qc.getQueryState(filtered)!.isInvalidated).toBe(true);
    expect(qc.getQueryState([...qk.summary(7)])!.isInvalidated).toBe(true);
    expect(qc.getQueryState(other)!.isInvalidated).toBe(false);
  });

  it("re-reads a run's re-analysis on each change, and its results and summary once it is done", async () => {
    const qc = new QueryClient();
    qc.setQueryData([...qk.reanalysis(7)], { state: "queued" });
    qc.setQueryData([...qk.results(7, { status: "failed" })], { total: 1 });
    qc.setQueryData([...qk.summary(7)], { total: 1 });
    const live = new Live(qc);
    live.handle({ kind: "reanalysis", run_id: 7, state: "running", generation: 1, version: 0 });
    await vi.advanceTimersByTimeAsync(150);
    expect(qc.getQueryState([...qk.reanalysis(7)])!.isInvalidated).toBe(true);
    expect(qc.getQueryState([...qk.results(7, { status: "failed" })])!.isInvalidated).toBe(false);
    live.handle({ kind: "reanalysis", run_id: 7, state: "done", generation: 1, version: 1 });
    await vi.advanceTimersByTimeAsync(150);
    expect(qc.getQueryState([...qk.results(7, { status: "failed" })])!.isInvalidated).toBe(true);
    expect(qc.getQueryState([...qk.summary(7)])!.isInvalidated).toBe(true);
  });
});
