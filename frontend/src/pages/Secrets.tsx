/** A project's secrets (docs/secrets.md), for maintainers: the list (values never shown), a form
 * for each kind (simple, ssh-key, user-password) and delete. */
import { useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { client, unwrap } from "../api/client";
import { useProjects } from "../api/queries";
import type { components } from "../api/schema";
import { PageHeader } from "../components/Layout";
import { Empty, ErrorBox, FormError, Skeleton, TimeAgo, useTitle } from "../components/ui";

type Secret = components["schemas"]["SecretOut"];
type SecretIn = components["schemas"]["SecretIn"];
export type Kind = "simple" | "ssh-key" | "user-password";
export type Parts = { value: string; user: string; key: string; password: string };

/** The fields each kind has, as the API takes them. */
export const KIND_FIELDS: Record<Kind, (keyof Parts)[]> = {
  simple: ["value"],
  "ssh-key": ["user", "key"],
  "user-password": ["user", "password"],
};

/** The body of POST /api/projects/{id}/secrets: only the fields of the kind. */
export function secretBody(name: string, kind: Kind, parts: Parts): SecretIn {
  const body: SecretIn = { name: name.trim(), kind };
  for (const f of KIND_FIELDS[kind]) body[f] = parts[f];
  return body;
}

/** How a stage refers to the secret (both syntaxes of the original). */
export function references(s: Pick<Secret, "name" | "kind">): string[] {
  if (s.kind === "user-password")
    return [`#{secrets.${s.name}.user}`, `#{secrets.${s.name}.password}`, `#{KK_SECRET_USER_${s.name}}`, `#{KK_SECRET_PASSWORD_${s.name}}`];
  if (s.kind === "ssh-key") return [`"ssh-key": "${s.name}"`, `#{secrets.${s.name}.user}`, `#{KK_SECRET_KEY_${s.name}}`];
  return [`#{secrets.${s.name}}`, `#{KK_SECRET_SIMPLE_${s.name}}`];
}

const EMPTY: Parts = { value: "", user: "", key: "", password: "" };

function NewSecret({ projectId }: { projectId: number }) {
  const qc = useQueryClient();
  const [name, setName] = useState("");
  const [kind, setKind] = useState<Kind>("simple");
  const [parts, setParts] = useState<Parts>(EMPTY);
  const m = useMutation({
    mutationFn: () =>
      unwrap<Secret>(client.POST("/api/projects/{project_id}/secrets", { params: { path: { project_id: projectId } }, body: secretBody(name, kind, parts) })),
    onSuccess: () => {
      setName("");
      setParts(EMPTY);
      void qc.invalidateQueries({ queryKey: ["secrets", projectId] });
    },
  });
  const field = (f: keyof Parts) =>
    f === "key" ? (
      <textarea key={f} aria-label="Private key" placeholder="-----BEGIN OPENSSH PRIVATE KEY-----" value={parts.key} onChange={(e) => setParts({ ...parts, key: e.target.value })} required />
    ) : (
      <input
        key={f}
        aria-label={f === "value" ? "Value" : f === "user" ? "User" : "Password"}
        placeholder={f}
        type={f === "user" ? "text" : "password"}
        autoComplete="new-password"
        value={parts[f]}
        onChange={(e) => setParts({ ...parts, [f]: e.target.value })}
        required={f !== "user" || kind === "user-password"}
      />
    );
  return (
    <form
      className="inline-form"
      data-testid="secret-new"
      onSubmit={(e) => {
        e.preventDefault();
        m.mutate();
      }}
    >
      <input aria-label="Name" placeholder="name" value={name} onChange={(e) => setName(e.target.value)} required />
      <select aria-label="Kind" value={kind} onChange={(e) => setKind(e.target.value as Kind)}>
        <option value="simple">simple</option>
        <option value="ssh-key">ssh-key</option>
        <option value="user-password">user-password</option>
      </select>
      {KIND_FIELDS[kind].map(field)}
      <button className="btn small primary" type="submit" disabled={m.isPending}>
        Add secret
      </button>
      <FormError error={m.error} />
    </form>
  );
}

export default function SecretsPage({ projectId }: { projectId: number }) {
  useTitle("Secrets");
  const qc = useQueryClient();
  const project = useProjects(true).data?.find((p) => p.id === projectId);
  const q = useQuery({
    queryKey: ["secrets", projectId],
    queryFn: () => unwrap<Secret[]>(client.GET("/api/projects/{project_id}/secrets", { params: { path: { project_id: projectId } } })),
  });
  const del = useMutation({
    mutationFn: (id: number) => unwrap(client.DELETE("/api/secrets/{secret_id}", { params: { path: { secret_id: id } } })),
    onSuccess: () => qc.invalidateQueries({ queryKey: ["secrets", projectId] }),
  });
  return (
    <>
      <PageHeader crumbs={[{ label: "Projects", href: "/" }, { label: project?.name ?? "…" }]} title="Secrets" />
      <NewSecret projectId={projectId} />
      {q.isPending ? (
        <Skeleton rows={3} />
      ) : q.isError ? (
        <ErrorBox error={q.error} retry={() => q.refetch()} />
      ) : q.data.length === 0 ? (
        <Empty title="No secret">Add one above; steps refer to it as #{"{secrets.NAME}"}.</Empty>
      ) : (
        <section className="card">
          <table className="table" data-testid="secrets">
            <thead>
              <tr>
                <th>Name</th>
                <th>Kind</th>
                <th>User</th>
                <th>In a stage</th>
                <th>Updated</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {q.data.map((s) => (
                <tr key={s.id} data-testid={`secret-${s.name}`}>
                  <td className="mono">{s.name}</td>
                  <td>{s.kind}</td>
                  <td>{s.user ?? ""}</td>
                  <td className="mono small">{references(s).join("  ")}</td>
                  <td>
                    <TimeAgo value={s.updated} />
                  </td>
                  <td>
                    <button className="btn small danger" onClick={() => del.mutate(s.id)} disabled={del.isPending}>
                      Delete
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <FormError error={del.error} />
        </section>
      )}
    </>
  );
}
