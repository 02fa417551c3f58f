import { useState, type FormEvent } from "react";
import { useInfiniteQuery } from "@tanstack/react-query";
import { listAudit, type AuditEntry, type AuditFilter } from "../api/audit";
import { useMe } from "../api/queries";
import { PageHeader } from "../components/Layout";
import { Empty, ErrorBox, Loading, TimeAgo, useTitle } from "../components/ui";

/** A change's details in a line: what a creation made, a setting's values before and after. */
function details(e: AuditEntry): string {
  const d = e.details as { id?: number; before?: unknown; after?: unknown };
  const parts: string[] = [];
  if (d.id !== undefined) parts.push(`created #${d.id}`);
  if (d.before !== undefined || d.after !== undefined) parts.push(`${JSON.stringify(d.before)} → ${JSON.stringify(d.after)}`);
  return parts.join("; ");
}

/** Who changed what, when and from where: administrators see every entry, maintainers their projects'. */
export default function AuditPage() {
  useTitle("Audit log");
  const me = useMe();
  const allowed = !!me.data && (me.data.is_admin || Object.values(me.data.roles ?? {}).includes("maintainer"));
  const [draft, setDraft] = useState({ user: "", action: "", project: "" });
  const [filter, setFilter] = useState<AuditFilter>({});
  const q = useInfiniteQuery({
    queryKey: ["audit", filter],
    queryFn: ({ pageParam }) => listAudit(filter, pageParam),
    initialPageParam: undefined as number | undefined,
    getNextPageParam: (last) => last.next_before ?? undefined,
    enabled: allowed,
  });
  if (me.data && !allowed) return <ErrorBox error={new Error("The audit log is for administrators and project maintainers.")} />;
  const apply = (e: FormEvent) => {
    e.preventDefault();
    setFilter({ user: draft.user.trim(), action: draft.action.trim(), project: Number(draft.project) || undefined });
  };
  const entries = q.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <>
      <PageHeader title="Audit log" />
      <section className="card">
        <form className="form-row" onSubmit={apply} data-testid="audit-filter">
          <input name="user" placeholder="user" value={draft.user} onChange={(e) => setDraft({ ...draft, user: e.target.value })} />
          <input name="action" placeholder="action, e.g. set_retention" value={draft.action} onChange={(e) => setDraft({ ...draft, action: e.target.value })} />
          <input name="project" placeholder="project id" inputMode="numeric" value={draft.project} onChange={(e) => setDraft({ ...draft, project: e.target.value })} />
          <button className="btn" type="submit">
            Filter
          </button>
        </form>
        {q.isPending ? (
          <Loading inline />
        ) : q.isError ? (
          <ErrorBox error={q.error} retry={() => q.refetch()} />
        ) : entries.length === 0 ? (
          <Empty title="No entries">No change matches these filters.</Empty>
        ) : (
          <table className="table" data-testid="audit">
            <thead>
              <tr>
                <th>When</th>
                <th>Who</th>
                <th>Action</th>
                <th>Resource</th>
                <th>Project</th>
                <th>From</th>
                <th>Details</th>
              </tr>
            </thead>
            <tbody>
              {entries.map((e) => (
                <tr key={e.id} data-testid={`audit-${e.id}`}>
                  <td>
                    <TimeAgo value={e.created} />
                  </td>
                  <td>
                    {e.username}
                    {e.token_id != null && <span className="muted small"> (token #{e.token_id})</span>}
                  </td>
                  <td className="mono">{e.action}</td>
                  <td className="mono small">
                    {e.method} {e.resource}
                  </td>
                  <td>{e.project_id ?? "-"}</td>
                  <td className="mono small">{e.client_ip ?? "-"}</td>
                  <td className="small">{details(e)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {q.hasNextPage && (
          <button className="btn" onClick={() => void q.fetchNextPage()} disabled={q.isFetchingNextPage} data-testid="audit-more">
            Older entries
          </button>
        )}
      </section>
    </>
  );
}
