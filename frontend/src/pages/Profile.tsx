import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { createToken, listTokens, patchMe, revokeToken, type NewApiToken, type Scope } from "../api/users";
import { useMe } from "../api/queries";
import { PageHeader } from "../components/Layout";
import { CopyButton, ErrorBox, FormError, Loading, TimeAgo, useTitle } from "../components/ui";
import { qk } from "../lib/queryKeys";

const SCOPES: [Scope, string][] = [
  ["read", "read (what viewers do)"],
  ["trigger", "trigger (run and cancel flows)"],
  ["write", "write (what maintainers do)"],
  ["admin", "admin (administrators' routes)"],
];

function Password() {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const m = useMutation({ mutationFn: () => patchMe({ password: next, current_password: current }) });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    m.mutate();
  };
  return (
    <form className="form-row" onSubmit={submit} data-testid="password">
      <input type="password" name="current_password" placeholder="current password" value={current} onChange={(e) => setCurrent(e.target.value)} required />
      <input type="password" name="new_password" placeholder="new password (8+ characters)" value={next} onChange={(e) => setNext(e.target.value)} required />
      <button className="btn" type="submit" disabled={m.isPending}>
        Change password
      </button>
      <FormError error={m.error} />
      <span className="muted small">Changing it ends your sessions: you log in again.</span>
    </form>
  );
}

function NewToken({ admin }: { admin: boolean }) {
  const qc = useQueryClient();
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState<Scope[]>(["read"]);
  const [days, setDays] = useState("90");
  const [made, setMade] = useState<NewApiToken | null>(null);
  const m = useMutation({
    mutationFn: () => createToken({ name, scopes, expires_in: days ? Number(days) * 86400 : null }),
    onSuccess: (t) => {
      setMade(t);
      setName("");
      qc.invalidateQueries({ queryKey: qk.tokens() });
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    m.mutate();
  };
  const toggle = (s: Scope) => setScopes(scopes.includes(s) ? scopes.filter((x) => x !== s) : [...scopes, s]);
  return (
    <>
      <form className="form-row" onSubmit={submit} data-testid="new-token">
        <input name="token_name" placeholder="token name" value={name} onChange={(e) => setName(e.target.value)} required />
        {SCOPES.filter(([s]) => admin || s !== "admin").map(([s, label]) => (
          <label key={s}>
            <input type="checkbox" name={`scope-${s}`} checked={scopes.includes(s)} onChange={() => toggle(s)} /> {label}
          </label>
        ))}
        <label>
          expires in <input name="days" type="number" min={1} max={366} value={days} onChange={(e) => setDays(e.target.value)} /> days (empty: never)
        </label>
        <button className="btn primary" type="submit" disabled={m.isPending || !scopes.length}>
          Create token
        </button>
        <FormError error={m.error} />
      </form>
      {made && (
        <div className="notice" data-testid="new-token-value">
          <p>
            The token <b>{made.name}</b>; copy it now, it is not shown again:
          </p>
          <div className="token-row">
            <code className="token">{made.token}</code>
            <CopyButton text={made.token} label="Copy token" />
          </div>
        </div>
      )}
    </>
  );
}

function Tokens({ admin }: { admin: boolean }) {
  const qc = useQueryClient();
  const tokens = useQuery({ queryKey: qk.tokens(), queryFn: listTokens });
  const revoke = useMutation({ mutationFn: revokeToken, onSuccess: () => qc.invalidateQueries({ queryKey: qk.tokens() }) });
  return (
    <>
      <NewToken admin={admin} />
      {tokens.isPending ? (
        <Loading inline />
      ) : tokens.isError ? (
        <ErrorBox error={tokens.error} />
      ) : (
        <table className="table" data-testid="tokens">
          <thead>
            <tr>
              <th>Name</th>
              <th>Scopes</th>
              <th>Created</th>
              <th>Expires</th>
              <th>Last used</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {tokens.data.map((t) => (
              <tr key={t.id} data-testid={`token-${t.name}`}>
                <td>{t.name}</td>
                <td>{t.scopes.join(", ")}</td>
                <td>
                  <TimeAgo value={t.created} />
                </td>
                <td>{t.expires ? <TimeAgo value={t.expires} /> : "never"}</td>
                <td>{t.last_used ? <TimeAgo value={t.last_used} /> : "never"}</td>
                <td>
                  {t.revoked ? (
                    "revoked"
                  ) : (
                    <button className="btn small" onClick={() => revoke.mutate(t.id)} disabled={revoke.isPending}>
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <FormError error={revoke.error} />
      <p className="muted small">
        Scripts send a token as <code>Authorization: Bearer kpat_…</code>; it acts as you, limited to its scopes. Kraken keeps only its hash.
      </p>
    </>
  );
}

/** The logged-in user's own account: password and personal access tokens. */
export default function ProfilePage() {
  useTitle("Profile");
  const me = useMe();
  if (me.isPending) return <Loading />;
  if (me.isError) return <ErrorBox error={me.error} />;
  return (
    <>
      <PageHeader title={`Profile: ${me.data.username}`} />
      <section className="card">
        <h2>Password</h2>
        {me.data.provider === "local" ? (
          <Password />
        ) : (
          <p className="muted" data-testid="password-elsewhere">
            You log in through {me.data.provider.toUpperCase()}: your password is changed there.
          </p>
        )}
      </section>
      <section className="card">
        <h2>API tokens</h2>
        <Tokens admin={me.data.is_admin} />
      </section>
    </>
  );
}
