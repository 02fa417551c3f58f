import { useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { Link } from "wouter";
import { ApiError, client, unwrap } from "../api/client";
import { useMe } from "../api/queries";
import { PageHeader } from "../components/Layout";
import { CopyButton, ErrorBox, Loading, useTitle } from "../components/ui";
import { setTheme, useTheme, type ThemeChoice } from "../lib/theme";
import { qk } from "../lib/queryKeys";

function AgentToken() {
  const token = useQuery({ queryKey: qk.agentToken(), retry: false, queryFn: () => unwrap(client.GET("/api/settings/agent-token")) });
  const [shown, setShown] = useState(false);
  if (token.isPending) return <Loading what="Reading the agent token" inline />;
  if (token.isError) {
    if (token.error instanceof ApiError && token.error.status === 403) return <p className="muted">Only an administrator may see the agent token.</p>;
    return <ErrorBox error={token.error} />;
  }
  const t = token.data.token;
  const server = window.location.origin;
  const cmd = `git clone <kraken repository> kraken && cd kraken && bash scripts/setup.sh\n.venv/bin/kraken agent --server ${server} --token ${t} --name build-1`;
  return (
    <>
      <div className="token-row">
        <code className="token" data-testid="agent-token">
          {shown ? t : "•".repeat(Math.min(t.length, 32))}
        </code>
        <button className="btn" onClick={() => setShown(!shown)}>
          {shown ? "Hide" : "Show"}
        </button>
        <CopyButton text={t} label="Copy token" />
      </div>
      <h3>Start an agent with it</h3>
      <p>On the build machine (Python 3.11+, git):</p>
      <pre className="code-block">{shown ? cmd : cmd.replace(t, "AGENT_TOKEN")}</pre>
      <div className="form-actions left">
        <CopyButton text={cmd} label="Copy the commands" />
      </div>
      <p className="muted small">
        The agent enrolls with this token and waits, pending, until an administrator approves it on the <Link href="/agents">Agents</Link> page (check its name and address
        there); from then on it uses a credential of its own, kept in its data directory. Its groups are set on that page too. The agent reports its executors
        (direct, Docker, LXD), system and labels; it gets only the jobs of its groups that it can run. Every option is also an
        environment variable: <code>KRAKEN_SERVER</code>, <code>KRAKEN_AGENT_TOKEN</code>, <code>KRAKEN_NAME</code>… Start the server with <code>--host 0.0.0.0</code> to accept agents
        from other machines.
      </p>
    </>
  );
}

export default function SettingsPage() {
  useTitle("Settings");
  const me = useMe();
  const theme = useTheme();
  return (
    <>
      <PageHeader title="Settings" />
      <section className="card">
        <h2>Agent token</h2>
        <AgentToken />
      </section>
      <section className="card">
        <h2>Users</h2>
        {me.data ? (
          <table className="table">
            <thead>
              <tr>
                <th>User</th>
                <th>Role</th>
              </tr>
            </thead>
            <tbody>
              <tr>
                <td>
                  {me.data.username} <span className="muted small">(you)</span>
                </td>
                <td>{me.data.is_admin ? "administrator" : "user"}</td>
              </tr>
            </tbody>
          </table>
        ) : (
          <Loading inline />
        )}
        <p className="muted small">
          Administrators manage users on the <Link href="/users">Users</Link> page; your password and API tokens are on your <Link href="/profile">profile</Link>.
        </p>
      </section>
      <section className="card">
        <h2>Appearance</h2>
        <fieldset className="segmented">
          <legend>Theme</legend>
          {(["system", "light", "dark"] as ThemeChoice[]).map((t) => (
            <label key={t} className={theme === t ? "on" : ""}>
              <input type="radio" name="theme" checked={theme === t} onChange={() => setTheme(t)} />
              {t}
            </label>
          ))}
        </fieldset>
      </section>
    </>
  );
}
