/**
 * ANSI SGR colours of log lines, parsed line by line (only visible lines are parsed).
 * Each line starts with the default style: tools that colour output reset at line ends,
 * and a per-line parse keeps random access cheap for 200 000-line logs.
 * Other escape sequences (cursor moves, OSC titles/links) are dropped; a carriage return
 * keeps what follows it, as a terminal would show a progress line.
 */

export interface Segment {
  text: string;
  /** CSS classes: a-fg1, a-bg4, a-b (bold), a-d (dim), a-i (italic), a-u (underline) */
  cls?: string;
  /** 256-colour and true-colour values as inline CSS */
  style?: { color?: string; backgroundColor?: string };
}

interface Sgr {
  fg: number | string | null; // 0-15 -> class, string -> inline colour
  bg: number | string | null;
  bold: boolean;
  dim: boolean;
  italic: boolean;
  underline: boolean;
  inverse: boolean;
}

const fresh = (): Sgr => ({ fg: null, bg: null, bold: false, dim: false, italic: false, underline: false, inverse: false });

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escape sequences are control characters
const ESC_RE = /\x1b(?:\[([0-9;:?]*)([@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])/g;

/** Text without escape sequences (for search and copy). */
export function stripAnsi(line: string): string {
  const cr = line.lastIndexOf("\r", line.length - 2);
  if (cr >= 0) line = line.slice(cr + 1);
  if (line.endsWith("\r")) line = line.slice(0, -1);
  return line.indexOf("\x1b") < 0 ? line : line.replace(ESC_RE, "");
}

function color256(n: number): number | string {
  if (n < 16) return n;
  if (n >= 232) {
    const v = 8 + (n - 232) * 10;
    return `rgb(${v},${v},${v})`;
  }
  const i = n - 16;
  const c = (x: number) => (x === 0 ? 0 : 55 + x * 40);
  return `rgb(${c(Math.floor(i / 36))},${c(Math.floor(i / 6) % 6)},${c(i % 6)})`;
}

function applySgr(st: Sgr, params: string): void {
  const codes = params === "" ? [0] : params.split(/[;:]/).map((p) => (p === "" ? 0 : Number(p)));
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (c === 0) Object.assign(st, fresh());
    else if (c === 1) st.bold = true;
    else if (c === 2) st.dim = true;
    else if (c === 3) st.italic = true;
    else if (c === 4) st.underline = true;
    else if (c === 7) st.inverse = true;
    else if (c === 22) st.bold = st.dim = false;
    else if (c === 23) st.italic = false;
    else if (c === 24) st.underline = false;
    else if (c === 27) st.inverse = false;
    else if (c >= 30 && c <= 37) st.fg = c - 30;
    else if (c >= 90 && c <= 97) st.fg = c - 90 + 8;
    else if (c === 39) st.fg = null;
    else if (c >= 40 && c <= 47) st.bg = c - 40;
    else if (c >= 100 && c <= 107) st.bg = c - 100 + 8;
    else if (c === 49) st.bg = null;
    else if (c === 38 || c === 48) {
      let value: number | string | null = null;
      if (codes[i + 1] === 5 && i + 2 < codes.length) {
        value = color256(codes[i + 2] & 255);
        i += 2;
      } else if (codes[i + 1] === 2 && i + 4 < codes.length) {
        value = `rgb(${codes[i + 2] & 255},${codes[i + 3] & 255},${codes[i + 4] & 255})`;
        i += 4;
      } else {
        break;
      }
      if (c === 38) st.fg = value;
      else st.bg = value;
    }
  }
}

function segment(text: string, st: Sgr): Segment {
  const fg = st.inverse ? st.bg : st.fg;
  const bg = st.inverse ? (st.fg ?? "fg") : st.bg;
  const cls: string[] = [];
  const style: Segment["style"] = {};
  if (typeof fg === "number") cls.push(`a-fg${fg}`);
  else if (typeof fg === "string") style.color = fg;
  if (bg === "fg") cls.push("a-bginv");
  else if (typeof bg === "number") cls.push(`a-bg${bg}`);
  else if (typeof bg === "string") style.backgroundColor = bg;
  if (st.bold) cls.push("a-b");
  if (st.dim) cls.push("a-d");
  if (st.italic) cls.push("a-i");
  if (st.underline) cls.push("a-u");
  const out: Segment = { text };
  if (cls.length) out.cls = cls.join(" ");
  if (style.color || style.backgroundColor) out.style = style;
  return out;
}

/** The line as styled segments. */
export function parseAnsi(line: string): Segment[] {
  const cr = line.lastIndexOf("\r", line.length - 2);
  if (cr >= 0) line = line.slice(cr + 1);
  if (line.endsWith("\r")) line = line.slice(0, -1);
  if (line.indexOf("\x1b") < 0) return [{ text: line }];
  const out: Segment[] = [];
  const st = fresh();
  let last = 0;
  ESC_RE.lastIndex = 0;
  for (let m = ESC_RE.exec(line); m; m = ESC_RE.exec(line)) {
    if (m.index > last) out.push(segment(line.slice(last, m.index), st));
    if (m[2] === "m") applySgr(st, m[1] ?? "");
    last = ESC_RE.lastIndex;
  }
  if (last < line.length) out.push(segment(line.slice(last), st));
  return out.length ? out : [{ text: "" }];
}
