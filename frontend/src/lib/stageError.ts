/** Where a stage schema error is in the code: its line when the server gives one, else the line
 * of the last key of its path (e.g. ``jobs[0].steps`` -> the first line with "steps":). */
import type { StageError } from "../api/types";

export function errorLine(err: StageError, code: string): { line: number; column: number | null; approx: boolean } | null {
  if (err.line) return { line: err.line, column: err.column ?? null, approx: false };
  if (!err.path) return null;
  const keys = err.path.split(/[.[\]]/).filter((k) => k && !/^\d+$/.test(k));
  const lines = code.split("\n");
  for (let k = keys.length - 1; k >= 0; k--) {
    const re = new RegExp(`["']${keys[k].replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}["']\\s*:`);
    const i = lines.findIndex((l) => re.test(l));
    if (i >= 0) return { line: i + 1, column: null, approx: true };
  }
  return null;
}
