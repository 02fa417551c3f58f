/** Small shared pieces: status badges, loading/error/empty states, times, copy button, dialog. */
import { useEffect, useRef, useState, type ReactNode } from "react";
import { ApiError } from "../api/client";
import { useNow } from "../lib/clock";
import { duration, formatDateTime, formatSeconds, timeAgo } from "../lib/format";

const ICONS: Record<string, string> = {
  passed: "✓",
  failed: "✗",
  error: "!",
  cancelled: "⊘",
  timeout: "⏱",
  running: "●",
  queued: "◌",
  skipped: "–",
  disabled: "–",
  "not-run": "–",
  none: "·",
};

/** The result of a completed thing, else its state. */
export function outcome(state: string, result: string | null | undefined): string {
  return state === "completed" ? (result ?? "error") : state;
}

export function StatusBadge({ state, result, label, title, small }: { state: string; result?: string | null; label?: ReactNode; title?: string; small?: boolean }) {
  const o = outcome(state, result);
  return (
    <span className={`badge st-${o}${small ? " small" : ""}`} title={title ?? o}>
      <span className="badge-icon" aria-hidden>
        {ICONS[o] ?? "?"}
      </span>
      {label ?? o}
    </span>
  );
}

export function Dot({ status, title }: { status: string; title?: string }) {
  return <span className={`dot st-${status}`} title={title ?? status} aria-label={title ?? status} role="img" />;
}

export function Loading({ what = "Loading", inline }: { what?: string; inline?: boolean }) {
  return (
    <div className={inline ? "loading inline" : "loading"} role="status" aria-live="polite">
      <span className="spinner" aria-hidden /> {what}…
    </div>
  );
}

export function Skeleton({ rows = 5 }: { rows?: number }) {
  return (
    <div className="skeleton" aria-busy="true" aria-label="loading">
      {Array.from({ length: rows }, (_, i) => (
        <div key={i} className="skeleton-row" style={{ width: `${90 - ((i * 17) % 35)}%` }} />
      ))}
    </div>
  );
}

export function ErrorBox({ error, retry, title }: { error: unknown; retry?: () => void; title?: string }) {
  const status = error instanceof ApiError ? error.status : undefined;
  const msg = error instanceof Error ? error.message : String(error);
  return (
    <div className="state-box error-box" role="alert">
      <div className="state-title">{title ?? (status === 404 ? "Not found" : status === 0 ? "Server unreachable" : "Something went wrong")}</div>
      <div className="state-text">{msg}</div>
      {retry && (
        <button className="btn" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Empty({ title, children, icon = "∅" }: { title: string; children?: ReactNode; icon?: string }) {
  return (
    <div className="state-box empty-box">
      <div className="state-icon" aria-hidden>
        {icon}
      </div>
      <div className="state-title">{title}</div>
      {children && <div className="state-text">{children}</div>}
    </div>
  );
}

export function TimeAgo({ value }: { value: string | null | undefined }) {
  const now = useNow(30_000);
  if (!value) return <span className="muted">–</span>;
  return (
    <time dateTime={value} title={formatDateTime(value)}>
      {timeAgo(value, now)}
    </time>
  );
}

/** Duration of something that may still run (ticks every second then). */
export function Elapsed({ start, end }: { start: string | null | undefined; end: string | null | undefined }) {
  const running = !!start && !end;
  const now = useNow(1000, running);
  const d = duration(start, end, running ? now : undefined);
  return <span className="num">{formatSeconds(d)}</span>;
}

export function CopyButton({ text, label = "Copy" }: { text: string; label?: string }) {
  const [done, setDone] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const ta = document.createElement("textarea");
      ta.value = text;
      document.body.appendChild(ta);
      ta.select();
      document.execCommand("copy");
      ta.remove();
    }
    setDone(true);
    setTimeout(() => setDone(false), 1500);
  };
  return (
    <button className="btn" onClick={copy} aria-live="polite">
      {done ? "Copied ✓" : label}
    </button>
  );
}

export function Dialog({ open, onClose, title, children, wide }: { open: boolean; onClose: () => void; title: string; children: ReactNode; wide?: boolean }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) {
      if (typeof d.showModal === "function") d.showModal();
      else d.setAttribute("open", "");
    }
    if (!open && d.open) d.close();
  }, [open]);
  return (
    <dialog ref={ref} className={wide ? "dialog wide" : "dialog"} onClose={onClose} onCancel={onClose} aria-label={title}>
      {open && (
        <>
          <div className="dialog-head">
            <h2>{title}</h2>
            <button className="icon-btn" onClick={onClose} aria-label="Close">
              ×
            </button>
          </div>
          {children}
        </>
      )}
    </dialog>
  );
}

export function FormError({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <div className="form-error" role="alert">
      {error instanceof Error ? error.message : String(error)}
    </div>
  );
}

export function Kv({ items }: { items: [string, ReactNode][] }) {
  return (
    <dl className="kv">
      {items.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

export function useTitle(title: string): void {
  useEffect(() => {
    document.title = title ? `${title} · Kraken` : "Kraken";
  }, [title]);
}
