/** Light, dark or the system's theme; stored in localStorage, applied as <html data-theme>. */
import { useSyncExternalStore } from "react";

export type ThemeChoice = "light" | "dark" | "system";
const KEY = "kraken.theme";
const listeners = new Set<() => void>();
const media = typeof window !== "undefined" ? window.matchMedia?.("(prefers-color-scheme: dark)") : undefined;

export function themeChoice(): ThemeChoice {
  const v = typeof localStorage !== "undefined" ? localStorage.getItem(KEY) : null;
  return v === "light" || v === "dark" ? v : "system";
}

function apply(): void {
  const c = themeChoice();
  const t = c === "system" ? (media?.matches ? "dark" : "light") : c;
  document.documentElement.dataset.theme = t;
  for (const l of listeners) l();
}

media?.addEventListener?.("change", apply);

export function setTheme(c: ThemeChoice): void {
  if (c === "system") localStorage.removeItem(KEY);
  else localStorage.setItem(KEY, c);
  apply();
}

export function useTheme(): ThemeChoice {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    themeChoice,
  );
}
