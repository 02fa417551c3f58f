import type { ReactNode } from "react";
import { Link, useLocation } from "wouter";
import { useQueryClient } from "@tanstack/react-query";
import { useMe } from "../api/queries";
import { client } from "../api/client";
import { auth } from "../lib/auth";
import { useLiveStatus } from "../lib/live";
import { setTheme, useTheme, type ThemeChoice } from "../lib/theme";

const NAV = [
  ["/", "Projects"],
  ["/logs", "Log search"],
  ["/agents", "Agents"],
  ["/tools", "Tools"],
  ["/settings", "Settings"],
] as const;

function LiveIndicator() {
  const status = useLiveStatus();
  const text = { off: "offline", connecting: "connecting", live: "live", reconnecting: "reconnecting" }[status];
  return (
    <span className={`live live-${status}`} title={status === "live" ? "Changes appear as they happen" : "Live updates are reconnecting; the page catches up when they are back"} data-testid="live-status">
      <span className="live-dot" aria-hidden /> {text}
    </span>
  );
}

function ThemeSwitch() {
  const theme = useTheme();
  const next: Record<ThemeChoice, ThemeChoice> = { system: "dark", dark: "light", light: "system" };
  const icon = { system: "◐", dark: "☾", light: "☀" }[theme];
  return (
    <button className="icon-btn" onClick={() => setTheme(next[theme])} title={`Theme: ${theme} (click to change)`} aria-label={`Theme: ${theme}`}>
      {icon}
    </button>
  );
}

export function Layout({ children }: { children: ReactNode }) {
  const [loc] = useLocation();
  const me = useMe();
  const qc = useQueryClient();
  const active = (href: string) => (href === "/" ? loc === "/" || loc.startsWith("/projects") || loc.startsWith("/branches") || loc.startsWith("/flows") || loc.startsWith("/runs") || loc.startsWith("/jobs") || loc.startsWith("/stages") || loc.startsWith("/test-cases") : loc.startsWith(href));
  return (
    <div className="app">
      <header className="topbar">
        <Link href="/" className="brand" aria-label="Kraken home">
          <svg viewBox="0 0 32 32" width="22" height="22" aria-hidden>
            <circle cx="16" cy="13" r="8.5" fill="currentColor" />
            <path d="M8 19q-2 8-5 9M12 21q0 6-3 9M16 22v8M20 21q0 6 3 9M24 19q2 8 5 9" stroke="currentColor" strokeWidth="2.5" fill="none" strokeLinecap="round" />
          </svg>
          Kraken
        </Link>
        <nav className="mainnav">
          {NAV.map(([href, label]) => (
            <Link key={href} href={href} className={active(href) ? "active" : ""}>
              {label}
            </Link>
          ))}
          {me.data?.is_admin && <Link href="/users" className={active("/users") ? "active" : ""}>Users</Link>}
          {(me.data?.is_admin || Object.values(me.data?.roles ?? {}).includes("maintainer")) && (
            <Link href="/audit" className={active("/audit") ? "active" : ""}>Audit</Link>
          )}
          {me.data?.is_admin && <Link href="/diagnostics" className={active("/diagnostics") ? "active" : ""}>Diagnostics</Link>}
        </nav>
        <div className="topbar-right">
          <LiveIndicator />
          <ThemeSwitch />
          <Link href="/profile" className="user" title="Your profile and API tokens">
            {me.data?.username ?? ""}
          </Link>
          <button
            className="btn ghost"
            onClick={() => {
              // ends the session on the server too (every login token of the user), then here
              void client.POST("/api/auth/logout").finally(() => {
                auth.logout();
                qc.clear();
              });
            }}
          >
            Log out
          </button>
        </div>
      </header>
      <main className="content">{children}</main>
    </div>
  );
}

export interface Crumb {
  label: ReactNode;
  href?: string;
}

export function PageHeader({ crumbs, title, actions, children }: { crumbs?: Crumb[]; title: ReactNode; actions?: ReactNode; children?: ReactNode }) {
  return (
    <div className="page-header">
      {crumbs && crumbs.length > 0 && (
        <nav className="crumbs" aria-label="Breadcrumb">
          {crumbs.map((c, i) => (
            <span key={i}>
              {c.href ? <Link href={c.href}>{c.label}</Link> : c.label}
              <span className="sep" aria-hidden>
                /
              </span>
            </span>
          ))}
        </nav>
      )}
      <div className="page-title-row">
        <h1>{title}</h1>
        {actions && <div className="actions">{actions}</div>}
      </div>
      {children}
    </div>
  );
}
