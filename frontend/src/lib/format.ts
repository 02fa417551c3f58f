/** Formatting of times, durations and counts. */

export function parseTime(value: string | null | undefined): number | null {
  if (!value) return null;
  const t = Date.parse(value);
  return Number.isNaN(t) ? null : t;
}

/** 0.42 s -> "420 ms", 75 -> "1m 15s", 4000 -> "1h 6m". */
export function formatSeconds(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)}s`;
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h ? `${h}h ${m}m` : `${m}m ${r}s`;
}

/** Duration between two ISO times; until ``now`` when not finished. */
export function duration(start: string | null | undefined, end: string | null | undefined, now = Date.now()): number | null {
  const a = parseTime(start);
  if (a === null) return null;
  const b = parseTime(end) ?? now;
  return Math.max(0, (b - a) / 1000);
}

const UNITS: [number, string][] = [
  [60, "s"],
  [60, "min"],
  [24, "h"],
  [30, "d"],
  [12, "mo"],
  [Infinity, "y"],
];

/** "just now", "5 min ago", "3 d ago". */
export function timeAgo(value: string | null | undefined, now = Date.now()): string {
  const t = parseTime(value);
  if (t === null) return "–";
  let v = Math.max(0, (now - t) / 1000);
  if (v < 10) return "just now";
  for (const [size, unit] of UNITS) {
    if (v < size) return `${Math.floor(v)} ${unit} ago`;
    v /= size;
  }
  return "long ago";
}

export function formatDateTime(value: string | null | undefined): string {
  const t = parseTime(value);
  if (t === null) return "–";
  return new Date(t).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

const nf = new Intl.NumberFormat("en-US");
export function formatCount(n: number | null | undefined): string {
  return n === null || n === undefined ? "–" : nf.format(n).replace(/,/g, "\u202f");
}

export function plural(n: number, word: string, many = `${word}s`): string {
  return `${formatCount(n)} ${n === 1 ? word : many}`;
}

/** 0 -> "0 B", 1536 -> "1.5 KiB", 5e6 -> "4.8 MiB". */
export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}
