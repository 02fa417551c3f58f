/**
 * Live updates: one EventSource on /api/events for the whole app. Each change invalidates the
 * queries that show it (batched, so a burst of step events costs one refetch per query), and
 * step states are patched into the cached jobs at once. After a lost connection the browser
 * reconnects by itself; the server's ``hello`` on the new connection makes every query refetch,
 * so the page catches up with what it missed. No polling timers.
 */
import { useSyncExternalStore } from "react";
import type { QueryClient, QueryKey } from "@tanstack/react-query";
import { auth, withToken } from "./auth";
import type { Job, LiveEvent } from "../api/types";

export type LiveStatus = "off" | "connecting" | "live" | "reconnecting";

const KINDS = ["flow", "run", "job", "step", "agent", "results"] as const;

type Listener = () => void;

export class Live {
  status: LiveStatus = "off";
  private es: EventSource | null = null;
  private connectedBefore = false;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private retryDelay = 1000;
  private pending = new Map<string, QueryKey>();
  private flushScheduled = false;
  private listeners = new Set<Listener>();
  private eventListeners = new Set<(e: LiveEvent) => void>();

  constructor(private readonly qc: QueryClient) {}

  subscribe = (l: Listener): (() => void) => {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  };

  /** Raw events, for pages that react to one (e.g. the job page's log stream restart). */
  onEvent(l: (e: LiveEvent) => void): () => void {
    this.eventListeners.add(l);
    return () => this.eventListeners.delete(l);
  }

  private setStatus(s: LiveStatus): void {
    if (s === this.status) return;
    this.status = s;
    for (const l of this.listeners) l();
  }

  start(): void {
    if (this.es || !auth.token) return;
    this.setStatus(this.connectedBefore ? "reconnecting" : "connecting");
    const es = new EventSource(withToken("/api/events"));
    this.es = es;
    es.addEventListener("hello", () => {
      this.retryDelay = 1000;
      if (this.connectedBefore) this.qc.invalidateQueries(); // catch up with what we missed
      this.connectedBefore = true;
      this.setStatus("live");
    });
    for (const kind of KINDS) {
      es.addEventListener(kind, (e) => {
        try {
          this.handle(JSON.parse((e as MessageEvent<string>).data) as LiveEvent);
        } catch {
          /* a malformed event is ignored */
        }
      });
    }
    es.onerror = () => {
      if (es.readyState === EventSource.CONNECTING) {
        this.setStatus("reconnecting"); // the browser retries by itself
        return;
      }
      // Closed for good (HTTP error, e.g. an expired token): check the session, retry with backoff.
      this.es = null;
      es.close();
      this.setStatus("reconnecting");
      void fetch("/api/auth/me", { headers: { Authorization: `Bearer ${auth.token ?? ""}` } })
        .then((r) => {
          if (r.status === 401) auth.logout("expired");
        })
        .catch(() => undefined);
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.start();
      }, this.retryDelay);
      this.retryDelay = Math.min(this.retryDelay * 2, 30000);
    };
  }

  stop(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.es?.close();
    this.es = null;
    this.connectedBefore = false;
    this.setStatus("off");
  }

  /** Reconnect now (the browser came back online). */
  kick(): void {
    if (this.es && this.es.readyState !== EventSource.CLOSED) return;
    this.stop();
    this.start();
  }

  private invalidate(...keys: QueryKey[]): void {
    for (const key of keys) this.pending.set(JSON.stringify(key), key);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Coalesce a burst of events (one agent batch is up to hundreds of changes) into one refetch per query.
    setTimeout(() => {
      this.flushScheduled = false;
      const keys = [...this.pending.values()];
      this.pending.clear();
      for (const key of keys) void this.qc.invalidateQueries({ queryKey: key });
    }, 100);
  }

  handle(e: LiveEvent): void {
    for (const l of this.eventListeners) l(e);
    switch (e.kind) {
      case "flow":
        this.invalidate(["flow", e.id], ["flows", e.branch_id], ["latest", e.branch_id]);
        // the results of a CI flow are analysed when it completes (until the server sends a
        // "results" event, the summaries and results on screen are re-read then)
        if (e.state === "completed") this.invalidate(["flowSummary", e.id], ["summary"], ["results"]);
        break;
      case "run":
        // the branch's flow list shows each run's state: refetch the list on screen (run events carry no branch)
        this.invalidate(["flow", e.flow_id], ["run", e.id], ["flows"]);
        if (e.state === "completed") this.invalidate(["summary", e.id], ["results", e.id]);
        break;
      case "job":
        this.invalidate(["job", e.id], ["jobs", e.run_id], ["run", e.run_id]);
        if (e.agent_name || e.state === "completed") this.invalidate(["agents"]);
        break;
      case "step":
        this.patchStep(e.job_id, e.index, e.state, e.result);
        this.invalidate(["job", e.job_id]);
        break;
      case "agent":
        this.invalidate(["agents"]);
        break;
      case "results": {
        // Results analysed (sent by the results feature when a job's analysis is done).
        if (e.run_id) this.invalidate(["summary", e.run_id], ["results", e.run_id]);
        if (e.flow_id) this.invalidate(["flowSummary", e.flow_id]);
        this.invalidate(["latest"]);
        break;
      }
    }
  }

  /** Show a step's new state immediately in every cached job list and job. */
  private patchStep(jobId: number, index: number, state: string, result: string | null): void {
    const patch = (j: Job): Job =>
      j.id !== jobId
        ? j
        : { ...j, steps: j.steps?.map((s) => (s.index === index ? { ...s, state, result } : s)) };
    this.qc.setQueriesData<Job[]>({ queryKey: ["jobs"] }, (jobs) => (Array.isArray(jobs) && jobs.some((j) => j.id === jobId) ? jobs.map(patch) : jobs));
    this.qc.setQueryData<Job>(["job", jobId], (j) => (j ? patch(j) : j));
  }
}

let live: Live | null = null;

export function initLive(qc: QueryClient): Live {
  live ??= new Live(qc);
  if (typeof window !== "undefined") {
    window.addEventListener("online", () => live?.kick());
  }
  return live;
}

export function getLive(): Live | null {
  return live;
}

export function useLiveStatus(): LiveStatus {
  return useSyncExternalStore(
    (l) => live?.subscribe(l) ?? (() => undefined),
    () => live?.status ?? "off",
  );
}
