/** The logged-in session: a bearer token kept in localStorage, observable from React. */
import { useSyncExternalStore } from "react";

const KEY = "kraken.token";
type Listener = () => void;
const listeners = new Set<Listener>();
let token: string | null = readToken();
let reason: string | null = null;

function readToken(): string | null {
  try {
    return localStorage.getItem(KEY);
  } catch {
    return null;
  }
}

function emit(): void {
  for (const l of listeners) l();
}

export const auth = {
  get token(): string | null {
    return token;
  },
  /** Why the last session ended ("expired"), shown on the login page. */
  get reason(): string | null {
    return reason;
  },
  login(value: string): void {
    token = value;
    reason = null;
    localStorage.setItem(KEY, value);
    emit();
  },
  logout(why: string | null = null): void {
    if (token === null) return;
    token = null;
    reason = why;
    localStorage.removeItem(KEY);
    emit();
  },
  subscribe(l: Listener): () => void {
    listeners.add(l);
    return () => listeners.delete(l);
  },
};

// Another tab logging in or out.
if (typeof window !== "undefined") {
  window.addEventListener("storage", (e) => {
    if (e.key === KEY) {
      token = e.newValue;
      emit();
    }
  });
}

export function useToken(): string | null {
  return useSyncExternalStore(auth.subscribe, () => auth.token);
}

export type StreamPurpose = "events" | "download";

/**
 * A URL for an EventSource or a download link, which cannot send the Authorization header: the
 * server takes in the address only a short-lived token made for that purpose (never the login
 * token, which would end up in logs and the browser history), fetched here just before use.
 */
export async function streamUrl(path: string, purpose: StreamPurpose): Promise<string> {
  const short = await streamToken(purpose);
  if (short === null) return path;
  const sep = path.includes("?") ? "&" : "?";
  return `${path}${sep}access_token=${encodeURIComponent(short)}`;
}

/** A short-lived token of this purpose (null when not logged in), for an address that carries it
 * in its path rather than its query: a report's pages, whose relative links keep the path. */
export async function streamToken(purpose: StreamPurpose): Promise<string | null> {
  if (!token) return null;
  const r = await fetch("/api/auth/stream-token", {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ purpose }),
  });
  if (r.status === 401) auth.logout("expired");
  if (!r.ok) throw new Error(`no stream token (HTTP ${r.status})`);
  const { token: short } = (await r.json()) as { token: string };
  return short;
}
