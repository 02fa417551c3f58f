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

/** A URL with the token as ``access_token`` (for EventSource and downloads, which cannot send headers). */
export function withToken(path: string): string {
  const sep = path.includes("?") ? "&" : "?";
  return token ? `${path}${sep}access_token=${encodeURIComponent(token)}` : path;
}
