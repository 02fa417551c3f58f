import { useEffect, useRef, useState, type FormEvent } from "react";
import { useLocation } from "wouter";
import { client, unwrap } from "../api/client";
import { auth } from "../lib/auth";
import { useTitle } from "../components/ui";

export default function LoginPage() {
  useTitle("Log in");
  const [, navigate] = useLocation();
  const [username, setUsername] = useState("admin");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(auth.reason === "expired" ? "Your session has expired: please log in again." : null);
  const [busy, setBusy] = useState(false);
  const [oidc, setOidc] = useState<{ name: string; start_url: string } | null>(null);
  const params = new URLSearchParams(window.location.search);
  const next = params.get("next");
  const target = next && next.startsWith("/") && !next.startsWith("//") ? next : "/";
  const finishing = useRef(false);

  // biome-ignore lint/correctness/useExhaustiveDependencies: once, when the page opens
  useEffect(() => {
    client.GET("/api/auth/providers").then(({ data }) => setOidc(data?.oidc ?? null), () => setOidc(null));
    // back from the OpenID Connect provider: the server left the login token in a one-time,
    // HttpOnly cookie (never in the URL); fetch it once
    if (params.get("oidc") === "1" && !finishing.current) {
      finishing.current = true;
      setBusy(true);
      unwrap(client.POST("/api/auth/oidc/token"))
        .then((out) => {
          auth.login(out.access_token);
          navigate(target, { replace: true });
        })
        .catch((err: unknown) => {
          setError(err instanceof Error ? err.message : String(err));
          setBusy(false);
        });
    }
  }, []);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const out = await unwrap(client.POST("/api/auth/login", { body: { username, password } }));
      auth.login(out.access_token);
      navigate(target, { replace: true });
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      setBusy(false);
    }
  };

  return (
    <div className="login-page">
      <form className="login-card" onSubmit={submit}>
        <div className="login-brand">
          <svg viewBox="0 0 32 32" width="40" height="40" aria-hidden>
            <circle cx="16" cy="13" r="8.5" fill="currentColor" />
            <path d="M8 19q-2 8-5 9M12 21q0 6-3 9M16 22v8M20 21q0 6 3 9M24 19q2 8 5 9" stroke="currentColor" strokeWidth="2.5" fill="none" strokeLinecap="round" />
          </svg>
          <h1>Kraken</h1>
        </div>
        <label>
          Username
          <input name="username" autoComplete="username" value={username} onChange={(e) => setUsername(e.target.value)} required autoFocus />
        </label>
        <label>
          Password
          <input name="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} required />
        </label>
        {error && (
          <div className="form-error" role="alert">
            {error}
          </div>
        )}
        <button className="btn primary" type="submit" disabled={busy}>
          {busy ? "Logging in…" : "Log in"}
        </button>
        {oidc && (
          <a
            className="btn"
            data-testid="oidc-login"
            href={`${oidc.start_url}?next=${encodeURIComponent(target)}`}
          >
            Log in with {oidc.name}
          </a>
        )}
        <p className="hint">
          The password of <code>admin</code> was printed by <code>kraken serve</code> at its first start (or set with <code>KRAKEN_ADMIN_PASSWORD</code>).
        </p>
      </form>
    </div>
  );
}
