/** Search across the logs of every job the caller may see (GET /api/logs/search): each hit links
 * to its line in the job's log (/jobs/:id#L<n>). The query lives in the address, so a search can
 * be shared. */
import { useState } from "react";
import { Link, useLocation, useSearch } from "wouter";
import { keepPreviousData, useInfiniteQuery } from "@tanstack/react-query";
import { client, unwrap } from "../api/client";
import { useProjects } from "../api/queries";
import type { components } from "../api/schema";
import { PageHeader } from "../components/Layout";
import { Empty, ErrorBox, Skeleton, TimeAgo, useTitle } from "../components/ui";
import { segments } from "../lib/highlight";

type Hit = components["schemas"]["LogSearchOut"]["hits"][number];

const PAGE = 50;

function HitText({ hit }: { hit: Hit }) {
  return (
    <code className="log-hit-text">
      {hit.text_offset > 0 && "…"}
      {segments(hit.text, hit.highlights as [number, number][]).map((s, i) => (s.mark ? <mark key={i}>{s.text}</mark> : <span key={i}>{s.text}</span>))}
    </code>
  );
}

function HitRow({ hit }: { hit: Hit }) {
  return (
    <li className="log-hit" data-testid="log-hit">
      <div className="log-hit-where muted">
        <Link href={`/branches/${hit.branch_id}`}>
          {hit.project_name} / {hit.branch_name}
        </Link>{" "}
        · <Link href={`/flows/${hit.flow_id}`}>flow {hit.flow_id}</Link> · job {hit.job_name}
        {hit.step_index !== null && ` · step ${hit.step_index + 1}`} · <TimeAgo value={hit.time} />
      </div>
      <Link href={`/jobs/${hit.job_id}#L${hit.line + 1}`} className="log-hit-line" title="Open the job's log at this line">
        <span className="log-hit-no">L{hit.line + 1}</span> <HitText hit={hit} />
      </Link>
    </li>
  );
}

export default function LogSearchPage() {
  useTitle("Log search");
  const params = new URLSearchParams(useSearch());
  const [, navigate] = useLocation();
  const q = params.get("q") ?? "";
  const projectId = params.get("project_id") ? Number(params.get("project_id")) : undefined;
  const [draft, setDraft] = useState(q);
  const [draftProject, setDraftProject] = useState(projectId ? String(projectId) : "");
  const projects = useProjects();
  const search = useInfiniteQuery({
    queryKey: ["log-search", q, projectId],
    enabled: q.trim() !== "",
    retry: false,
    placeholderData: keepPreviousData,
    initialPageParam: null as string | null,
    queryFn: ({ pageParam, signal }) =>
      unwrap(
        client.GET("/api/logs/search", {
          signal,
          params: { query: { q, project_id: projectId, limit: PAGE, cursor: pageParam ?? undefined } },
        }),
      ),
    getNextPageParam: (last) => last.next_cursor,
  });
  const hits = search.data?.pages.flatMap((p) => p.hits) ?? [];
  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    const next = new URLSearchParams();
    if (draft.trim()) next.set("q", draft.trim());
    if (draftProject) next.set("project_id", draftProject);
    navigate(`/logs?${next.toString()}`);
  };
  return (
    <>
      <PageHeader title="Log search" />
      <section className="card">
        <form className="log-search-form" onSubmit={submit} role="search">
          <input
            type="search"
            aria-label="Search the job logs"
            placeholder='e.g. ConnectTimeout "exit code 137"'
            value={draft}
            onChange={(e) => setDraft(e.target.value)}
            autoFocus
          />
          <select aria-label="Project" value={draftProject} onChange={(e) => setDraftProject(e.target.value)}>
            <option value="">All projects</option>
            {(projects.data ?? []).map((p) => (
              <option key={p.id} value={p.id}>
                {p.name}
              </option>
            ))}
          </select>
          <button className="btn primary" type="submit">
            Search
          </button>
        </form>
        <p className="muted small" data-testid="log-search-syntax">
          Every word must occur in the line, anywhere and in any case (<code>timeout</code> finds <code>ConnectTimeoutError</code>);
          <code>"quoted text"</code> matches exactly, spaces included; each term needs at least 3 characters. Newest lines first;
          lines are searchable about a second after a job printed them.
        </p>
      </section>
      {q.trim() === "" ? (
        <Empty title="Search every job's log" icon="⌕">
          Type what you are looking for, such as an error message.
        </Empty>
      ) : search.isError ? (
        <ErrorBox error={search.error} title="The search was refused" />
      ) : search.isPending ? (
        <Skeleton rows={6} />
      ) : hits.length === 0 ? (
        <Empty title="No line matches">
          Nothing in the logs you can see contains {q}. {search.data?.pages[0]?.indexed_lines ?? 0} lines are indexed.
        </Empty>
      ) : (
        <section className="card">
          <ul className="log-hits">
            {hits.map((h) => (
              <HitRow key={`${h.job_id}:${h.line}`} hit={h} />
            ))}
          </ul>
          {search.hasNextPage && (
            <button className="btn" onClick={() => search.fetchNextPage()} disabled={search.isFetchingNextPage}>
              {search.isFetchingNextPage ? "Loading…" : "More"}
            </button>
          )}
        </section>
      )}
    </>
  );
}
