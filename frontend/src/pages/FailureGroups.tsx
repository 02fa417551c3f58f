/**
 * A run's failures grouped by cause (GET /api/runs/{id}/failure-groups): "312 failures, 3 causes",
 * each cause with its signature, a representative message, its tests (all of them on demand) and
 * whether it failed tests in the branch's earlier CI flows (known, with a link to where it first
 * appeared) or not (new).
 */
import { useState } from "react";
import { Link } from "wouter";
import { useFailureGroups, useFailureGroupTests } from "../api/queries";
import type { FailureGroup, FailureGroups as Groups, FailureTest } from "../api/types";
import { Empty, ErrorBox, Loading } from "../components/ui";
import { formatCount, plural } from "../lib/format";

/** "312 failures, 3 causes" (and the failures analysed before signatures existed, if any). */
export function causesLabel(g: Pick<Groups, "failures" | "causes" | "unkeyed">): string {
  const head = `${plural(g.failures, "failure")}, ${plural(g.causes, "cause")}`;
  return g.unkeyed ? `${head} (${formatCount(g.unkeyed)} without a signature)` : head;
}

/** Where a group's history link goes: the grouped view of the run where the cause first appeared. */
export function firstSeenHref(g: Pick<FailureGroup, "first_seen">): string | null {
  return g.first_seen ? `/runs/${g.first_seen.run_id}/results?view=groups` : null;
}

function TestLink({ t, branchId }: { t: FailureTest; branchId?: number }) {
  return (
    <li data-testid="group-test">
      <span className={`chip st-${t.status}`}>{t.status}</span>{" "}
      {t.change !== "none" && <span className={`chip change-${t.change}`}>{t.change}</span>}{" "}
      <Link className="mono" href={`/test-cases/${t.test_case_id}${branchId ? `?branch=${branchId}` : ""}`}>
        {t.test}
      </Link>
      {t.flaky && <span className="chip flaky">flaky</span>}
    </li>
  );
}

function AllTests({ runId, group, branchId }: { runId: number; group: FailureGroup; branchId?: number }) {
  const q = useFailureGroupTests(runId, group.key, true);
  if (q.isPending) return <Loading what="Loading the tests" inline />;
  if (q.isError) return <ErrorBox error={q.error} retry={() => q.refetch()} title="The tests cannot be read" />;
  const tests = q.data.pages.flatMap((p) => p.items);
  return (
    <>
      <ul className="group-tests">
        {tests.map((t) => (
          <TestLink key={t.result_id} t={t} branchId={branchId} />
        ))}
      </ul>
      {q.hasNextPage && (
        <button className="btn ghost small" disabled={q.isFetchingNextPage} onClick={() => void q.fetchNextPage()}>
          More tests
        </button>
      )}
    </>
  );
}

function GroupCard({ runId, g, branchId }: { runId: number; g: FailureGroup; branchId?: number }) {
  const [all, setAll] = useState(false);
  const [msg, setMsg] = useState(false);
  const href = firstSeenHref(g);
  return (
    <section className="card failure-group" data-testid="failure-group" data-key={g.key}>
      <div className="card-head">
        <h3>
          <span className="counter-n">{formatCount(g.count)}</span> {g.count === 1 ? "failure" : "failures"}
        </h3>
        {g.known && href ? (
          <span className="chip" data-testid="group-known" title={plural(g.earlier_flows, "earlier CI flow")}>
            known since{" "}
            <Link href={href} data-testid="group-first-seen">
              flow #{g.first_seen!.flow_seq}
            </Link>{" "}
            ({plural(g.earlier_flows, "earlier flow")})
          </span>
        ) : (
          <span className="chip change-new" data-testid="group-new">
            new cause
          </span>
        )}
      </div>
      <div className="mono break small" data-testid="group-signature" title="exception type | innermost frames | error line">
        {g.signature || "(no message)"}
      </div>
      {g.message && (
        <button className="link small" onClick={() => setMsg(!msg)} aria-expanded={msg}>
          {msg ? "Hide the message" : "Show a message"}
        </button>
      )}
      {msg && g.message && <pre className="result-msg">{g.message}</pre>}
      {all ? (
        <AllTests runId={runId} group={g} branchId={branchId} />
      ) : (
        <>
          <ul className="group-tests">
            {g.tests.map((t) => (
              <TestLink key={t.result_id} t={t} branchId={branchId} />
            ))}
          </ul>
          {g.more_tests && (
            <button className="btn ghost small" onClick={() => setAll(true)} data-testid="group-all-tests">
              All {formatCount(g.count)} tests
            </button>
          )}
        </>
      )}
      {g.recent.length > 1 && (
        <div className="muted small">
          also in:{" "}
          {g.recent.map((f) => (
            <Link key={f.flow_id} href={`/runs/${f.run_id}/results?view=groups`} className="group-flow">
              #{f.flow_seq} ({f.count})
            </Link>
          ))}
        </div>
      )}
    </section>
  );
}

export default function FailureGroupsView({ runId, branchId }: { runId: number; branchId?: number }) {
  const q = useFailureGroups(runId);
  if (q.isPending) return <Loading what="Grouping the failures" />;
  if (q.isError) return <ErrorBox error={q.error} retry={() => q.refetch()} title="The failure groups cannot be read" />;
  const d = q.data;
  return (
    <div className="failure-groups" data-testid="failure-groups">
      <p className="results-meta" data-testid="causes-label">
        {causesLabel(d)}
        {d.groups.length < d.causes ? ` · the ${d.groups.length} largest shown` : ""}
      </p>
      {d.failures === 0 ? (
        <Empty title="No failures in this run" icon="✓" />
      ) : (
        d.groups.map((g) => <GroupCard key={g.key} runId={runId} g={g} branchId={branchId} />)
      )}
    </div>
  );
}
