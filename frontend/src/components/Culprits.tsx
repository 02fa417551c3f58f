/**
 * Which commit broke a run's regressed tests (docs/culprits.md): the run's culprit searches with
 * the culprit's author and message, a button that starts them, and the culprit of one test for the
 * result detail. Searches still bisecting are re-read every 2 s.
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link } from "wouter";
import { client, unwrap } from "../api/client";
import type { components } from "../api/schema";
import { qk } from "../lib/queryKeys";
import { FormError } from "./ui";

export type CulpritSearch = components["schemas"]["CulpritSearchOut"];

const ACTIVE = new Set(["pending", "bisecting"]);

/** A run's searches (kept under the run's results key: the "results" event refreshes them). */
export const useCulprits = (runId: number) =>
  useQuery({
    queryKey: qk.results(runId, { culprits: true }),
    retry: false,
    queryFn: () => unwrap(client.GET("/api/runs/{run_id}/culprits", { params: { path: { run_id: runId } } })),
    refetchInterval: (q) => (q.state.data?.some((s) => ACTIVE.has(s.state)) ? 2000 : false),
  });

/** The search that holds ``test``, if any. */
export function culpritOf(searches: CulpritSearch[] | undefined, test: string): CulpritSearch | undefined {
  return searches?.find((s) => s.tests.includes(test));
}

const short = (sha: string | null | undefined) => (sha ? sha.slice(0, 10) : "–");

/** One search in a line: the culprit (sha, author, message) or where the search stands. */
export function CulpritLine({ s }: { s: CulpritSearch }) {
  if (s.state === "found" && s.culprit) {
    const c = s.culprit_commit;
    return (
      <span data-testid="culprit" data-state={s.state}>
        broken by <code title={s.culprit}>{short(s.culprit)}</code>
        {c?.author ? ` (${c.author})` : ""} {c?.message ? <q>{c.message}</q> : null}
        {s.flows.length > 0 ? ` · ${s.flows.length} bisection flow${s.flows.length > 1 ? "s" : ""}` : " · no bisection needed"}
      </span>
    );
  }
  const range = `${short(s.good_commit)}..${short(s.bad_commit)}${s.range_commits ? ` (${s.range_commits} commits)` : ""}`;
  return (
    <span data-testid="culprit" data-state={s.state}>
      {s.state === "bisecting" ? `bisecting ${range}` : s.state === "pending" ? `reading ${range}` : `${s.state}: ${range}`}
      {s.reason ? ` – ${s.reason}` : ""}
    </span>
  );
}

/** The run's culprit searches, or a button that starts them when the run has regressions. */
export function CulpritsPanel({ runId, regressions }: { runId: number; regressions: number }) {
  const qc = useQueryClient();
  const q = useCulprits(runId);
  const start = useMutation({
    mutationFn: () => unwrap(client.POST("/api/runs/{run_id}/culprits", { params: { path: { run_id: runId } } })),
    onSuccess: (data) => qc.setQueryData(qk.results(runId, { culprits: true }), data),
  });
  if (!q.data || (q.data.length === 0 && regressions === 0)) return null;
  return (
    <section className="card culprits" data-testid="culprits">
      <h3>Which commit broke it</h3>
      {q.data.length === 0 ? (
        <button className="btn" onClick={() => start.mutate()} disabled={start.isPending} data-testid="find-culprits">
          Find the commits that broke the {regressions} regressed test{regressions > 1 ? "s" : ""}
        </button>
      ) : (
        <ul className="plain">
          {q.data.map((s) => (
            <li key={s.id}>
              <span className="mono small">{s.tests.length > 3 ? `${s.tests.slice(0, 3).join(", ")} and ${s.tests.length - 3} more` : s.tests.join(", ")}</span>
              {": "}
              <CulpritLine s={s} />
              {s.flows.length > 0 && (
                <span className="muted small">
                  {" "}
                  {s.flows.map((f) => (
                    <Link key={f} href={`/flows/${f}`}>
                      #{f}{" "}
                    </Link>
                  ))}
                </span>
              )}
            </li>
          ))}
        </ul>
      )}
      <FormError error={start.error} />
    </section>
  );
}
