/** Search across the logs of every job the caller may see (GET /api/logs/search): each hit links
 * to its line in the job's log (/jobs/:id#L<n>). Administrators may search Kraken's own service
 * logs instead (service=, level=; stored with KRAKEN_SERVICE_LOGS_STORE=true). The query lives in
 * the address, so a search can be shared. */
import { useState } from "react";
import { Link, useLocation, useSearch } from "wouter";
import { keepPreviousData, useInfiniteQuery } from "@tanstack/react-query";
import { client, unwrap } from "../api/client";
import { useMe, useProjects } from "../api/queries";
import type { components } from "../api/schema";
import { PageHeader } from "../components/Layout";
import { Empty, ErrorBox, Skeleton, TimeAgo, useTitle } from "../components/ui";
import { segments } from "../lib/highlight";

type Hit = components["schemas"]["LogSearchOut"]["hits"][number];
type ServiceHit = components["schemas"]["ServiceLogHitOut"];

const PAGE = 50;
export const SERVICES = ["all", "serve", "server", "controller", "worker", "agent"] as const;
export const LEVELS = ["debug", "info", "warning", "error", "critical"] as const;

function HitText({ hit }: { hit: Hit | ServiceHit }) {
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

type Paged = { hasNextPage: boolean; isFetchingNextPage: boolean; fetchNextPage: () => unknown };

function More({ search }: { search: Paged }) {
  if (!search.hasNextPage) return null;
  return (
    <button className="btn" onClick={() => search.fetchNextPage()} disabled={search.isFetchingNextPage}>
      {search.isFetchingNextPage ? "Loading…" : "More"}
    </button>
  );
}

function ServiceHitRow({ hit }: { hit: ServiceHit }) {
  return (
    <li className="log-hit" data-testid="service-hit">
      <div className="log-hit-where muted">
        <span className={`badge level-${hit.level}`}>{hit.level}</span> {hit.service} on {hit.host} (pid {hit.pid}) · {hit.logger}
        {hit.flow_id !== null && (
          <>
            {" "}
            · <Link href={`/flows/${hit.flow_id}`}>flow {hit.flow_id}</Link>
          </>
        )}
        {hit.job_id !== null && (
          <>
            {" "}
            · <Link href={`/jobs/${hit.job_id}`}>job {hit.job_id}</Link>
          </>
        )}{" "}
        · <TimeAgo value={hit.time} />
      </div>
      <div className="log-hit-line">
        <HitText hit={hit} />
      </div>
    </li>
  );
}

export default function LogSearchPage() {
  useTitle("Log search");
  const params = new URLSearchParams(useSearch());
  const [, navigate] = useLocation();
  const q = params.get("q") ?? "";
  const projectId = params.get("project_id") ? Number(params.get("project_id")) : undefined;
  const service = params.get("service") ?? undefined;
  const level = service ? (params.get("level") ?? undefined) : undefined;
  const [draft, setDraft] = useState(q);
  const [draftProject, setDraftProject] = useState(projectId ? String(projectId) : "");
  const [draftService, setDraftService] = useState(service ?? "");
  const [draftLevel, setDraftLevel] = useState(level ?? "");
  const projects = useProjects();
  const me = useMe();
  const search = useInfiniteQuery({
    queryKey: ["log-search", q, projectId, service, level],
    enabled: q.trim() !== "",
    retry: false,
    placeholderData: keepPreviousData,
    initialPageParam: null as string | null,
    queryFn: ({ pageParam, signal }) =>
      unwrap(
        client.GET("/api/logs/search", {
          signal,
          params: {
            query: service
              ? { q, service, level, limit: PAGE, cursor: pageParam ?? undefined }
              : { q, project_id: projectId, limit: PAGE, cursor: pageParam ?? undefined },
          },
        }),
      ),
    getNextPageParam: (last) => last.next_cursor,
  });
  const hits = search.data?.pages.flatMap((p) => p.hits) ?? [];
  const serviceHits = search.data?.pages.flatMap((p) => p.service_hits ?? []) ?? [];
  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    const next = new URLSearchParams();
    if (draft.trim()) next.set("q", draft.trim());
    if (draftService) {
      next.set("service", draftService);
      if (draftLevel) next.set("level", draftLevel);
    } else if (draftProject) next.set("project_id", draftProject);
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
          {me.data?.is_admin && (
            <select aria-label="Logs" value={draftService} onChange={(e) => setDraftService(e.target.value)}>
              <option value="">Job logs</option>
              {SERVICES.map((s) => (
                <option key={s} value={s}>
                  {s === "all" ? "Service logs: every service" : `Service logs: ${s}`}
                </option>
              ))}
            </select>
          )}
          {draftService ? (
            <select aria-label="Level" value={draftLevel} onChange={(e) => setDraftLevel(e.target.value)}>
              <option value="">Any level</option>
              {LEVELS.map((l) => (
                <option key={l} value={l}>
                  {l} and above
                </option>
              ))}
            </select>
          ) : (
            <select aria-label="Project" value={draftProject} onChange={(e) => setDraftProject(e.target.value)}>
              <option value="">All projects</option>
              {(projects.data ?? []).map((p) => (
                <option key={p.id} value={p.id}>
                  {p.name}
                </option>
              ))}
            </select>
          )}
          <button className="btn primary" type="submit">
            Search
          </button>
        </form>
        <p className="muted small" data-testid="log-search-syntax">
          Every word must occur in the line, anywhere and in any case (<code>timeout</code> finds <code>ConnectTimeoutError</code>);
          <code>"quoted text"</code> matches exactly, spaces included; each term needs at least 3 characters. Newest lines first;
          lines are searchable about a second after a job printed them.
          {me.data?.is_admin && " Service logs: Kraken's own log records (stored when the server runs with KRAKEN_SERVICE_LOGS_STORE=true)."}
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
      ) : service ? (
        serviceHits.length === 0 ? (
          <Empty title="No record matches">Nothing in the service logs contains {q}.</Empty>
        ) : (
          <section className="card">
            <ul className="log-hits">
              {serviceHits.map((h, i) => (
                <ServiceHitRow key={`${h.time}:${i}`} hit={h} />
              ))}
            </ul>
            <More search={search} />
          </section>
        )
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
          <More search={search} />
        </section>
      )}
    </>
  );
}
