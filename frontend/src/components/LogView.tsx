/**
 * The job log viewer: a fixed-row-height virtual list (only the visible lines are in the DOM and
 * parsed for ANSI colours), line numbers with #L anchors, follow mode, search and download.
 * Stays smooth with hundreds of thousands of lines: scrolling costs O(visible rows).
 */
import { memo, useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState, useSyncExternalStore, type KeyboardEvent as ReactKeyboardEvent } from "react";
import { parseAnsi, type Segment } from "../lib/ansi";
import type { LogStore } from "../lib/logStore";
import { formatCount } from "../lib/format";
import { download } from "../lib/download";

export const ROW = 18;
const OVERSCAN = 20;

interface Props {
  store: LogStore;
  running: boolean;
  /** The download address, made on click (it carries a short-lived token). */
  downloadUrl: () => Promise<string>;
  downloadName: string;
  streamState?: string;
  /** jump here on load (0-based line number), from the URL's #L anchor */
  initialLine?: number | null;
  height?: string;
  /** a step to scroll to (0-based line) */
  jumpTo?: { line: number; n: number } | null;
}

function highlight(segs: Segment[], text: string, q: string, current: boolean): Segment[] | (Segment & { hl?: string })[] {
  if (!q) return segs;
  const lower = text.toLowerCase();
  const ranges: [number, number][] = [];
  for (let i = lower.indexOf(q); i >= 0; i = lower.indexOf(q, i + q.length)) ranges.push([i, i + q.length]);
  if (!ranges.length) return segs;
  const out: (Segment & { hl?: string })[] = [];
  let pos = 0;
  let r = 0;
  for (const s of segs) {
    let start = 0;
    const len = s.text.length;
    while (start < len) {
      const abs = pos + start;
      while (r < ranges.length && ranges[r][1] <= abs) r++;
      const range = ranges[r];
      if (!range || range[0] >= pos + len) {
        out.push({ ...s, text: s.text.slice(start) });
        break;
      }
      if (range[0] > abs) {
        out.push({ ...s, text: s.text.slice(start, range[0] - pos) });
        start = range[0] - pos;
        continue;
      }
      const stop = Math.min(len, range[1] - pos);
      out.push({ ...s, text: s.text.slice(start, stop), hl: current ? "hl cur" : "hl" });
      start = stop;
    }
    pos += len;
  }
  return out;
}

const Line = memo(function Line({ n, text, query, current, selected, onNumber }: { n: number; text: string; query: string; current: boolean; selected: boolean; onNumber: (n: number) => void }) {
  const segs = parseAnsi(text);
  const plain = query ? segs.map((s) => s.text).join("") : "";
  const parts = query ? highlight(segs, plain, query, current) : segs;
  return (
    <div className={`log-line${selected ? " sel" : ""}${current ? " cur-line" : ""}`} data-line={n + 1}>
      <a className="ln" href={`#L${n + 1}`} onClick={(e) => { e.preventDefault(); onNumber(n); }}>
        {n + 1}
      </a>
      <span className="lt">
        {parts.map((p, i) => {
          const hl = (p as { hl?: string }).hl;
          const cls = [p.cls, hl].filter(Boolean).join(" ");
          return cls || p.style ? (
            <span key={i} className={cls || undefined} style={p.style}>
              {p.text}
            </span>
          ) : (
            p.text
          );
        })}
      </span>
    </div>
  );
});

/** Search matches, found incrementally as lines stream in. */
function useSearch(store: LogStore, query: string, version: number): number[] {
  const state = useRef<{ q: string; upTo: number; base: number; matches: number[] }>({ q: "", upTo: 0, base: 0, matches: [] });
  return useMemo(() => {
    const s = state.current;
    const q = query.toLowerCase();
    if (s.q !== q || s.base !== store.base) {
      s.q = q;
      s.base = store.base;
      s.upTo = 0;
      s.matches = [];
    }
    if (!q) return s.matches;
    if (s.upTo < store.lines.length) {
      const more: number[] = [];
      for (let i = s.upTo; i < store.lines.length; i++) if (store.searchText(i).includes(q)) more.push(store.base + i);
      s.upTo = store.lines.length;
      if (more.length) s.matches = s.matches.concat(more);
    }
    return s.matches;
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [store, query, version]);
}

export function LogView({ store, running, downloadUrl, downloadName, streamState, initialLine, height = "70vh", jumpTo }: Props) {
  const version = useSyncExternalStore((l) => store.subscribe(l), store.getVersion);
  const scroller = useRef<HTMLDivElement>(null);
  const searchBox = useRef<HTMLInputElement>(null);
  const [range, setRange] = useState<[number, number]>([0, 60]);
  const [follow, setFollow] = useState(running && initialLine == null);
  const [selected, setSelected] = useState<number | null>(initialLine ?? null);
  const [input, setInput] = useState("");
  const [query, setQuery] = useState("");
  const [cur, setCur] = useState(0);
  const programmatic = useRef(false);
  const jumped = useRef(false);
  const count = store.lines.length;
  const matches = useSearch(store, query, version);

  const measure = useCallback(() => {
    const el = scroller.current;
    if (!el) return;
    const first = Math.max(0, Math.floor(el.scrollTop / ROW) - OVERSCAN);
    const last = Math.min(count, Math.ceil((el.scrollTop + el.clientHeight) / ROW) + OVERSCAN);
    setRange((r) => (r[0] === first && r[1] === last ? r : [first, last]));
  }, [count]);

  const scrollToLine = useCallback(
    (n: number, align: "center" | "end" = "center") => {
      const el = scroller.current;
      if (!el) return;
      const i = n - store.base;
      programmatic.current = true;
      el.scrollTop = align === "end" ? i * ROW : i * ROW - el.clientHeight / 2 + ROW;
      measure();
    },
    [store, measure],
  );

  // follow: stick to the bottom as lines arrive
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    if (follow) {
      programmatic.current = true;
      el.scrollTop = el.scrollHeight;
    }
    measure();
  }, [version, follow, measure]);

  // the #L anchor, once that line has arrived
  useEffect(() => {
    if (jumped.current || initialLine == null || initialLine >= store.end) return;
    jumped.current = true;
    scrollToLine(initialLine);
  }, [version, initialLine, store, scrollToLine]);

  useEffect(() => {
    if (jumpTo) {
      setFollow(false);
      setSelected(jumpTo.line);
      requestAnimationFrame(() => scrollToLine(jumpTo.line));
    }
  }, [jumpTo, scrollToLine]);

  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const ro = new ResizeObserver(() => measure());
    ro.observe(el);
    return () => ro.disconnect();
  }, [measure]);

  const onScroll = () => {
    const el = scroller.current;
    if (!el) return;
    if (programmatic.current) {
      programmatic.current = false;
    } else {
      const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < ROW * 2;
      if (follow && !atBottom) setFollow(false);
      else if (!follow && atBottom && running) setFollow(true);
    }
    measure();
  };

  // search: debounce typing, jump to the first match after the view's top
  useEffect(() => {
    const t = setTimeout(() => setQuery(input), input.length > 2 ? 120 : 250);
    return () => clearTimeout(t);
  }, [input]);
  useEffect(() => {
    setCur(0);
    if (query && matches.length) {
      setFollow(false);
      scrollToLine(matches[0]);
    }
    // only when the query changes
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [query]);

  const go = (delta: number) => {
    if (!matches.length) return;
    const next = (cur + delta + matches.length) % matches.length;
    setCur(next);
    setFollow(false);
    scrollToLine(matches[next]);
  };

  const onKey = (e: ReactKeyboardEvent<HTMLInputElement>) => {
    if (e.key === "Enter") {
      e.preventDefault();
      if (input !== query) setQuery(input);
      else go(e.shiftKey ? -1 : 1);
    } else if (e.key === "Escape") {
      setInput("");
      setQuery("");
    }
  };

  // Ctrl/Cmd+F searches the log (the browser's find cannot see virtualized lines)
  useEffect(() => {
    const h = (e: KeyboardEvent) => {
      if ((e.ctrlKey || e.metaKey) && e.key === "f") {
        e.preventDefault();
        searchBox.current?.focus();
        searchBox.current?.select();
      }
    };
    window.addEventListener("keydown", h);
    return () => window.removeEventListener("keydown", h);
  }, []);

  const selectLine = useCallback((n: number) => {
    setSelected(n);
    history.replaceState(null, "", `#L${n + 1}`);
  }, []);

  const q = query.toLowerCase();
  const curLine = matches.length ? matches[Math.min(cur, matches.length - 1)] : -1;
  const [first, last] = [Math.min(range[0], count), Math.min(range[1], count)];
  const rows = [];
  for (let i = first; i < last; i++) {
    const n = store.base + i;
    rows.push(<Line key={n} n={n} text={store.lines[i]} query={q} current={n === curLine} selected={n === selected} onNumber={selectLine} />);
  }
  const digits = String(store.end).length;

  return (
    <div className="logview" style={{ ["--ln-width" as string]: `${Math.max(4, digits) + 1}ch` }}>
      <div className="log-toolbar">
        <div className="log-search">
          <input
            ref={searchBox}
            type="search"
            placeholder="Search the log (Ctrl+F)"
            value={input}
            onChange={(e) => setInput(e.target.value)}
            onKeyDown={onKey}
            aria-label="Search the log"
            data-testid="log-search"
          />
          <span className="muted small num" data-testid="log-matches">
            {query ? (matches.length ? `${formatCount(cur + 1)} / ${formatCount(matches.length)}` : "no match") : ""}
          </span>
          <button className="icon-btn" onClick={() => go(-1)} disabled={!matches.length} aria-label="Previous match" title="Previous match (Shift+Enter)">
            ↑
          </button>
          <button className="icon-btn" onClick={() => go(1)} disabled={!matches.length} aria-label="Next match" title="Next match (Enter)">
            ↓
          </button>
        </div>
        <span className="muted small num" data-testid="log-count">
          {formatCount(store.end)} lines{store.dropped ? ` (first ${formatCount(store.dropped)} not kept in the view)` : ""}
          {streamState === "reconnecting" ? " · reconnecting…" : running && !store.ended ? " · streaming" : ""}
        </span>
        <label className="check small">
          <input
            type="checkbox"
            checked={follow}
            onChange={(e) => {
              setFollow(e.target.checked);
            }}
            data-testid="log-follow"
          />
          Follow
        </label>
        <button className="btn small" onClick={() => { setFollow(false); scrollToLine(store.base, "end"); }}>
          Top
        </button>
        <button className="btn small" onClick={() => void download(downloadUrl, downloadName)} data-testid="log-download">
          Download
        </button>
      </div>
      <div className="log-scroll" ref={scroller} onScroll={onScroll} style={{ height }} tabIndex={0} data-testid="log-scroll">
        {count === 0 ? (
          <div className="log-empty muted">{store.ended ? "The job wrote no output." : running ? "Waiting for output…" : "Loading the log…"}</div>
        ) : (
          <div className="log-inner" style={{ height: count * ROW }}>
            <div className="log-rows" style={{ transform: `translateY(${first * ROW}px)` }}>
              {rows}
            </div>
          </div>
        )}
      </div>
    </div>
  );
}
