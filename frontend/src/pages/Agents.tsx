import { useState } from "react";
import { Link } from "wouter";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { client, unwrap } from "../api/client";
import { useAgents } from "../api/queries";
import type { Agent } from "../api/types";
import { PageHeader } from "../components/Layout";
import { Dot, Empty, ErrorBox, FormError, Skeleton, TimeAgo, useTitle } from "../components/ui";
import { qk } from "../lib/queryKeys";

function caps(a: Agent) {
  const c = a.capabilities as {
    executors?: Record<string, unknown>;
    systems?: string[];
    os?: string;
    arch?: string;
    cpus?: number;
    memory_mb?: number;
    labels?: string[];
  };
  return c;
}

function GroupsEditor({ agent, onDone }: { agent: Agent; onDone: () => void }) {
  const [text, setText] = useState(agent.groups.join(", "));
  const qc = useQueryClient();
  const m = useMutation({
    mutationFn: () =>
      unwrap(
        client.PATCH("/api/agents/{agent_id}", {
          params: { path: { agent_id: agent.id } },
          body: { groups: text.split(",").map((g) => g.trim()).filter(Boolean) },
        }),
      ),
    onSuccess: (a) => {
      qc.setQueryData<Agent[]>(qk.agents(), (list) => list?.map((x) => (x.id === a.id ? a : x)));
      onDone();
    },
  });
  return (
    <form
      className="inline-form"
      onSubmit={(e) => {
        e.preventDefault();
        m.mutate();
      }}
    >
      <input value={text} onChange={(e) => setText(e.target.value)} aria-label="Groups, comma-separated" autoFocus placeholder="all, linux" />
      <button className="btn small primary" type="submit" disabled={m.isPending}>
        Save
      </button>
      <button className="btn small" type="button" onClick={onDone}>
        Cancel
      </button>
      <FormError error={m.error} />
    </form>
  );
}

/** What the agents page says of an agent: enrollment first (pending, revoked), then presence. */
export function agentStatus(agent: Pick<Agent, "approved" | "enrolled" | "enabled" | "online" | "current_job_id">): string {
  if (!agent.approved) return agent.enrolled ? "pending" : "revoked";
  if (!agent.enabled) return "disabled";
  return agent.online ? (agent.current_job_id ? "busy" : "online") : "offline";
}

function EnrollmentButtons({ agent }: { agent: Agent }) {
  const qc = useQueryClient();
  const act = useMutation({
    mutationFn: (what: "approve" | "revoke") =>
      unwrap(
        what === "approve"
          ? client.POST("/api/agents/{agent_id}/approve", { params: { path: { agent_id: agent.id } } })
          : client.POST("/api/agents/{agent_id}/revoke", { params: { path: { agent_id: agent.id } } }),
      ),
    onSuccess: (a) => qc.setQueryData<Agent[]>(["agents"], (list) => list?.map((x) => (x.id === a.id ? a : x))),
  });
  return (
    <>
      {!agent.approved && agent.enrolled && (
        <button className="btn small primary" onClick={() => act.mutate("approve")} disabled={act.isPending} aria-label={`Approve ${agent.name}`}>
          Approve
        </button>
      )}
      {agent.enrolled && (
        <button
          className="btn small danger"
          onClick={() => act.mutate("revoke")}
          disabled={act.isPending}
          aria-label={`Revoke ${agent.name}`}
          title="Cut the agent off now: its credential stops working and its running job ends with an error"
        >
          {agent.approved ? "Revoke" : "Reject"}
        </button>
      )}
      <FormError error={act.error} />
    </>
  );
}

function AgentRow({ agent }: { agent: Agent }) {
  const [editing, setEditing] = useState(false);
  const qc = useQueryClient();
  const toggle = useMutation({
    mutationFn: () => unwrap(client.PATCH("/api/agents/{agent_id}", { params: { path: { agent_id: agent.id } }, body: { enabled: !agent.enabled } })),
    onSuccess: (a) => qc.setQueryData<Agent[]>(qk.agents(), (list) => list?.map((x) => (x.id === a.id ? a : x))),
  });
  const c = caps(agent);
  const status = agentStatus(agent);
  return (
    <tr className={agent.enabled && agent.approved ? "" : "disabled-row"} data-testid={`agent-${agent.name}`}>
      <td>
        <Dot status={status} /> <span className="strong">{agent.name}</span>
        <div className="muted small mono">{agent.address ?? ""}</div>
      </td>
      <td>
        <span className={`chip agent-${status}`}>{status}</span>
      </td>
      <td>
        {editing ? (
          <GroupsEditor agent={agent} onDone={() => setEditing(false)} />
        ) : (
          <>
            {agent.groups.map((g) => (
              <span key={g} className="chip mono">
                {g}
              </span>
            ))}
            <button className="btn ghost small" onClick={() => setEditing(true)} aria-label={`Edit the groups of ${agent.name}`}>
              edit
            </button>
            {agent.requested_groups.length > 0 && (
              <div className="muted small" title="What the agent's --group asked for; only an administrator sets its groups">
                asked for: {agent.requested_groups.join(", ")}
              </div>
            )}
          </>
        )}
      </td>
      <td className="small">
        <div>
          {c.os ?? ""} {c.arch ? `· ${c.arch}` : ""} {c.cpus ? `· ${c.cpus} CPUs` : ""} {c.memory_mb ? `· ${Math.round(c.memory_mb / 1024)} GB` : ""}
        </div>
        <div>
          {Object.keys(c.executors ?? {}).map((e) => (
            <span key={e} className="chip mono">
              {e}
            </span>
          ))}
          {[...new Set([...(c.systems ?? []), ...(c.labels ?? [])])].map((s) => (
            <span key={s} className="chip mono subtle" title={(c.labels ?? []).includes(s) ? "label" : "system"}>
              {s}
            </span>
          ))}
        </div>
      </td>
      <td>{agent.current_job_id ? <Link href={`/jobs/${agent.current_job_id}`}>job {agent.current_job_id}</Link> : <span className="muted">idle</span>}</td>
      <td>
        <TimeAgo value={agent.last_seen} />
      </td>
      <td>
        <EnrollmentButtons agent={agent} />
        {agent.approved && (
          <button className={agent.enabled ? "btn small" : "btn small primary"} onClick={() => toggle.mutate()} disabled={toggle.isPending}>
            {agent.enabled ? "Disable" : "Enable"}
          </button>
        )}
        <FormError error={toggle.error} />
      </td>
    </tr>
  );
}

export default function AgentsPage() {
  useTitle("Agents");
  const agents = useAgents();
  const online = agents.data?.filter((a) => a.online).length ?? 0;
  const pending = agents.data?.filter((a) => !a.approved && a.enrolled).length ?? 0;
  return (
    <>
      <PageHeader title="Agents" actions={<Link href="/settings" className="btn">Add an agent</Link>}>
        {agents.data && agents.data.length > 0 && (
          <div className="meta-line">
            <span>
              {online} of {agents.data.length} online
            </span>
            {pending > 0 && <span data-testid="agents-pending">{pending} waiting for approval</span>}
          </div>
        )}
      </PageHeader>
      {agents.isPending ? (
        <Skeleton rows={4} />
      ) : agents.isError ? (
        <ErrorBox error={agents.error} retry={() => agents.refetch()} />
      ) : agents.data.length === 0 ? (
        <Empty title="No agents yet" icon="⚙">
          Agents run the jobs. <Link href="/settings">See how to start one</Link> with the agent token; it appears here, pending, until you approve it.
        </Empty>
      ) : (
        <div className="table-wrap">
          <table className="table" data-testid="agents-table">
            <thead>
              <tr>
                <th>Agent</th>
                <th>State</th>
                <th>Groups</th>
                <th>Capabilities</th>
                <th>Current job</th>
                <th>Last seen</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {agents.data.map((a) => (
                <AgentRow key={a.id} agent={a} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
