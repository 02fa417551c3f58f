/**
 * Live updates: one EventSource on /api/events for the whole app. Each change invalidates the
 * queries that show it (batched, so a burst of step events costs one refetch per query), and
 * step states are patched into the cached jobs at once. After a lost connection the browser
 * reconnects by itself; the server's ``hello`` on the new connection makes every query refetch,
 * so the page catches up with what it missed. A ``resync`` event (the server's bus lost events
 * during a Redis outage, the connection itself stayed up) does the same. No polling timers.
 */
import { useSyncExternalStore } from "react";
import type { QueryClient, QueryKey } from "@tanstack/react-query";
import { auth, streamUrl } from "./auth";
import type { Job, LiveEvent } from "../api/types";
import { qk } from "./queryKeys";

export type LiveStatus = "off" | "connecting" | "live" | "reconnecting";

const KINDS = ["flow", "run", "job", "step", "agent", "results", "reanalysis"] as const;

type Listener = () => void;

export class Live {
  status: LiveStatus = "off";
  private es: EventSource | null = null;
  private opening = false;
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
    if (this.es || this.opening || !auth.token) return;
    this.setStatus(this.connectedBefore ? "reconnecting" : "connecting");
    this.opening = true;
    streamUrl("/api/events", "events").then(
      (url) => {
        this.opening = false;
        if (this.status !== "off") this.open(url);
      },
      () => {
        this.opening = false;
        if (this.status !== "off") this.retryLater();
      },
    );
  }

  private retryLater(): void {
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.start();
    }, this.retryDelay);
    this.retryDelay = Math.min(this.retryDelay * 2, 30000);
  }

  /** The stream, on an address with a fresh short-lived token (the browser's own reconnects reuse
   * it and fail once it has expired: then ``onerror`` sees the stream closed and a new token is fetched). */
  private open(url: string): void {
    const es = new EventSource(url);
    this.es = es;
    es.addEventListener("hello", () => {
      this.retryDelay = 1000;
      if (this.connectedBefore) this.qc.invalidateQueries(); // catch up with what we missed
      this.connectedBefore = true;
      this.setStatus("live");
    });
    es.addEventListener("resync", () => this.resync());
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
      this.retryLater();
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

  /** The server missed events (its bus was cut off): re-read everything shown. */
  resync(): void {
    void this.qc.invalidateQueries();
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
        this.invalidate(qk.flow(e.id), qk.flows(e.branch_id), qk.latest(e.branch_id));
        // a CI flow's results are compared with the branch's history when the flow completes
        // (the "results" event below says when each job's analysis is done)
        if (e.state === "completed") this.invalidate(qk.flowSummary(e.id), qk.summary(), qk.results());
        break;
      case "run":
        // the branch's flow list shows each run's state: refetch the list on screen (run events carry no branch)
        this.invalidate(qk.flow(e.flow_id), qk.run(e.id), qk.flows());
        if (e.state === "completed") this.invalidate(qk.summary(e.id), qk.results(e.id));
        break;
      case "job":
        this.invalidate(qk.job(e.id), qk.jobs(e.run_id), qk.run(e.run_id));
        if (e.agent_name || e.state === "completed") this.invalidate(qk.agents());
        break;
      case "step":
        this.patchStep(e.job_id, e.index, e.state, e.result);
        this.invalidate(qk.job(e.job_id));
        break;
      case "agent":
        this.invalidate(qk.agents());
        break;
      case "results": {
        // a job's results are analysed (sent by kraken/results/analysis.py's announce)
        this.invalidate(qk.summary(e.run_id), qk.results(e.run_id), qk.flowSummary(e.flow_id), qk.latest());
        break;
      }
      case "reanalysis":
        // a run's forced re-analysis moved on; once done its figures are new (kraken/results/reanalysis.py)
        this.invalidate(qk.reanalysis(e.run_id));
        if (e.state === "done") this.invalidate(qk.summary(e.run_id), qk.results(e.run_id), qk.flowSummary(), qk.latest());
        break;
    }
  }

  /** Show a step's new state immediately in every cached job list and job. */
  private patchStep(jobId: number, index: number, state: string, result: string | null): void {
    const patch = (j: Job): Job =>
      j.id !== jobId
        ? j
        : { ...j, steps: j.steps?.map((s) => (s.index === index ? { ...s, state, result } : s)) };
    this.qc.setQueriesData<Job[]>({ queryKey: qk.jobs() }, (jobs) => (Array.isArray(jobs) && jobs.some((j) => j.id === jobId) ? jobs.map(patch) : jobs));
    this.qc.setQueryData<Job>(qk.job(jobId), (j) => (j ? patch(j) : j));
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
