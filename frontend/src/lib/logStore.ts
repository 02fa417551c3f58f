/**
 * A job's log in memory: lines appended as they stream in, read by index by the virtualized view.
 * Memory is bounded: past MAX_LINES the oldest lines are dropped from the view (the whole log
 * stays downloadable); line numbers keep counting from the job's first line.
 */
import { stripAnsi } from "./ansi";

export const MAX_LINES = 500_000;
const DROP = 50_000;

type Listener = () => void;

export class LogStore {
  /** lines[i] is log line number base + i (0-based) */
  lines: string[] = [];
  base = 0;
  /** line numbers where steps start, when the stream says (``step_index`` in lines events) */
  stepStarts = new Map<number, number>();
  ended = false;
  version = 0;
  private listeners = new Set<Listener>();
  private scheduled = false;

  constructor(readonly maxLines = MAX_LINES) {}

  /** Number of the line after the last one received. */
  get end(): number {
    return this.base + this.lines.length;
  }

  get dropped(): number {
    return this.base;
  }

  append(firstLine: number, lines: string[], stepIndex?: number | null): void {
    let skip = 0;
    if (firstLine < this.end) skip = this.end - firstLine; // already have these (a re-sent chunk)
    if (skip >= lines.length) return;
    if (stepIndex !== undefined && stepIndex !== null && !this.stepStarts.has(stepIndex)) this.stepStarts.set(stepIndex, firstLine + skip);
    if (firstLine > this.end && this.lines.length === 0) this.base = firstLine;
    const add = skip ? lines.slice(skip) : lines;
    for (let i = 0; i < add.length; i++) this.lines.push(add[i]);
    if (this.lines.length > this.maxLines) {
      const drop = Math.max(DROP, this.lines.length - this.maxLines);
      this.lines.splice(0, drop);
      this.base += drop;
    }
    this.changed();
  }

  finish(): void {
    this.ended = true;
    this.changed();
  }

  reset(): void {
    this.lines = [];
    this.base = 0;
    this.ended = false;
    this.stepStarts.clear();
    this.changed();
  }

  /** The line with number n, or undefined when dropped or not received. */
  line(n: number): string | undefined {
    return this.lines[n - this.base];
  }

  /** Lower-cased text without escape sequences (not kept: memory stays that of the lines). */
  searchText(i: number): string {
    const raw = this.lines[i];
    return (raw.indexOf("\x1b") < 0 && raw.indexOf("\r") < 0 ? raw : stripAnsi(raw)).toLowerCase();
  }

  /** Line numbers containing ``query`` (case-insensitive), at most ``limit``. */
  search(query: string, limit = 100_000): number[] {
    const q = query.toLowerCase();
    const out: number[] = [];
    if (!q) return out;
    for (let i = 0; i < this.lines.length && out.length < limit; i++) {
      // cheap pre-check on the raw line before building the stripped lower-case copy
      const raw = this.lines[i];
      if (raw.length < q.length) continue;
      if (this.searchText(i).includes(q)) out.push(this.base + i);
    }
    return out;
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  getVersion = (): number => this.version;

  /** Listeners run once per animation frame however many chunks arrived. */
  private changed(): void {
    this.version++;
    if (this.scheduled) return;
    this.scheduled = true;
    const run = () => {
      this.scheduled = false;
      for (const l of this.listeners) l();
    };
    if (typeof requestAnimationFrame === "function" && typeof document !== "undefined" && !document.hidden) requestAnimationFrame(run);
    else setTimeout(run, 50);
  }
}

export interface LogStreamHandle {
  close(): void;
}

/**
 * Follow /api/jobs/{id}/log/stream into the store: stored lines first, then live ones, until ``end``.
 * After a lost connection it reconnects with ``after`` = the last line it has, so nothing is
 * received twice or missed.
 */
export function streamLog(url: (after: number) => string | Promise<string>, store: LogStore, onState?: (s: "streaming" | "reconnecting" | "ended") => void): LogStreamHandle {
  let es: EventSource | null = null;
  let closed = false;
  let delay = 500;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const retry = () => {
    if (closed || store.ended) return;
    onState?.("reconnecting");
    timer = setTimeout(() => void open(), delay);
    delay = Math.min(delay * 2, 15_000);
  };
  const open = async () => {
    if (closed) return;
    let address: string;
    try {
      address = await url(store.end - 1); // a fresh short-lived stream token each time
    } catch {
      retry();
      return;
    }
    if (closed) return;
    es = new EventSource(address);
    onState?.("streaming");
    es.addEventListener("lines", (e) => {
      delay = 500;
      const d = JSON.parse((e as MessageEvent<string>).data) as { first_line: number; lines: string[]; step_index?: number | null };
      store.append(d.first_line, d.lines, d.step_index);
    });
    es.addEventListener("end", () => {
      es?.close();
      es = null;
      store.finish();
      onState?.("ended");
    });
    es.onerror = () => {
      // Reconnect ourselves (the browser would re-send the first URL and replay the whole log).
      es?.close();
      es = null;
      retry();
    };
  };
  void open();
  return {
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      es?.close();
    },
  };
}
