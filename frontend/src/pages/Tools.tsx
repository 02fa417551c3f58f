/** Custom tools (docs/tools.md): every registered version (GET /api/tools); administrators
 * register one from a git repository or a folder on the server (POST /api/tools) and delete a
 * version or a whole tool (DELETE /api/tools/{name}[/{version}]). */
import { useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { client, unwrap } from "../api/client";
import { useMe } from "../api/queries";
import type { components } from "../api/schema";
import { ConfirmDelete } from "../components/ConfirmDelete";
import { PageHeader } from "../components/Layout";
import { Empty, ErrorBox, FormError, Skeleton, TimeAgo, useTitle } from "../components/ui";

type Tool = components["schemas"]["ToolOut"];
type Source = "git" | "directory";

/** The tools grouped by name, versions in registration order (the last one is what `name` alone picks). */
export function byName(tools: Tool[]): [string, Tool[]][] {
  const groups = new Map<string, Tool[]>();
  for (const t of tools) groups.set(t.name, [...(groups.get(t.name) ?? []), t]);
  return [...groups.entries()];
}

function RegisterForm() {
  const qc = useQueryClient();
  const [source, setSource] = useState<Source>("git");
  const [location, setLocation] = useState("");
  const [ref, setRef] = useState("");
  const m = useMutation({
    mutationFn: () =>
      unwrap<Tool>(
        client.POST("/api/tools", {
          body:
            source === "git"
              ? { source: "git", url: location.trim(), ref: ref.trim() || null }
              : { source: "directory", path: location.trim() },
        }),
      ),
    onSuccess: () => {
      setLocation("");
      setRef("");
      qc.invalidateQueries({ queryKey: ["tools"] });
    },
  });
  return (
    <form
      className="inline-form"
      data-testid="tool-register"
      onSubmit={(e) => {
        e.preventDefault();
        m.mutate();
      }}
    >
      <select value={source} onChange={(e) => setSource(e.target.value as Source)} aria-label="Source">
        <option value="git">git repository</option>
        <option value="directory">folder on the server</option>
      </select>
      <input
        value={location}
        onChange={(e) => setLocation(e.target.value)}
        aria-label={source === "git" ? "Repository URL" : "Folder"}
        placeholder={source === "git" ? "https://example.org/tool.git" : "/srv/kraken-tools/tool"}
        required
      />
      {source === "git" && <input value={ref} onChange={(e) => setRef(e.target.value)} aria-label="Branch or tag" placeholder="tag or branch" />}
      <button className="btn small primary" type="submit" disabled={m.isPending}>
        Register
      </button>
      <FormError error={m.error} />
    </form>
  );
}

/** What deleting leaves: the tool (all versions) or one version of it. */
type Deleting = { name: string; version: string | null };

function deleteTool({ name, version }: Deleting): Promise<unknown> {
  return version === null
    ? unwrap(client.DELETE("/api/tools/{name}", { params: { path: { name } } }))
    : unwrap(client.DELETE("/api/tools/{name}/{version}", { params: { path: { name, version } } }));
}

function ToolCard({ name, versions, admin }: { name: string; versions: Tool[]; admin: boolean }) {
  const qc = useQueryClient();
  const [deleting, setDeleting] = useState<Deleting | null>(null);
  const latest = versions[versions.length - 1];
  return (
    <section className="card" data-testid={`tool-${name}`}>
      <div className="card-head">
        <h3 className="mono">{name}</h3>
        <span className="muted small">{latest.description}</span>
        {admin && (
          <button className="btn small danger" onClick={() => setDeleting({ name, version: null })}>
            Delete tool…
          </button>
        )}
      </div>
      <div className="table-wrap">
        <table className="table">
          <thead>
            <tr>
              <th>Version</th>
              <th>Step</th>
              <th>Entry</th>
              <th>Size</th>
              <th>sha256</th>
              <th>Source</th>
              <th>Registered</th>
              {admin && <th />}
            </tr>
          </thead>
          <tbody>
            {versions.map((t) => (
              <tr key={t.id} data-testid={`tool-version-${t.version}`}>
                <td className="mono">{t.version}</td>
                <td className="mono small">{`"tool": "${t.name}@${t.version}"`}</td>
                <td className="mono small">{t.entry}</td>
                <td>{t.size} B</td>
                <td className="mono small" title={t.digest}>
                  {t.digest.slice(0, 12)}
                </td>
                <td className="small">{t.source}</td>
                <td>
                  <TimeAgo value={t.created} />
                </td>
                {admin && (
                  <td>
                    <button className="btn small" onClick={() => setDeleting({ name, version: t.version })}>
                      Delete
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <details>
        <summary className="small">Fields (JSON Schema of {latest.version})</summary>
        <pre className="mono small">{JSON.stringify(latest.fields_schema, null, 2)}</pre>
      </details>
      {deleting && (
        <ConfirmDelete
          open
          onClose={() => setDeleting(null)}
          what={deleting.version === null ? "tool" : "tool version"}
          name={deleting.version === null ? name : `${name}@${deleting.version}`}
          consequences="stages that use it are refused at their next save or flow"
          action={() => deleteTool(deleting)}
          onDone={() => {
            setDeleting(null);
            void qc.invalidateQueries({ queryKey: ["tools"] });
          }}
        />
      )}
    </section>
  );
}

export default function ToolsPage() {
  useTitle("Tools");
  const me = useMe();
  const q = useQuery({ queryKey: ["tools"], queryFn: () => unwrap<Tool[]>(client.GET("/api/tools")) });
  return (
    <>
      <PageHeader title="Custom tools" />
      {me.data?.is_admin && <RegisterForm />}
      {q.isPending ? (
        <Skeleton rows={4} />
      ) : q.isError ? (
        <ErrorBox error={q.error} retry={() => q.refetch()} />
      ) : q.data.length === 0 ? (
        <Empty title="No custom tool">Administrators register tools from a git repository, a folder or an archive (docs/tools.md).</Empty>
      ) : (
        byName(q.data).map(([name, versions]) => (
          <ToolCard key={name} name={name} versions={versions} admin={!!me.data?.is_admin} />
        ))
      )}
    </>
  );
}
