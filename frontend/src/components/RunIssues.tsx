/**
 * A run's linter issues (GET /api/runs/{id}/issues?sort=new): new ones first, then the others by
 * age (how many CI flows they have been there), youngest first; those not analysed yet last.
 */
import { useState } from "react";
import { useRunIssues } from "../api/queries";
import type { Issue } from "../api/types";
import { Empty, ErrorBox, Loading } from "./ui";
import { plural } from "../lib/format";

/** "src/a.py:12:4" (the column only when the linter gave one). */
export function issuePlace(i: Pick<Issue, "path" | "line" | "column">): string {
  return `${i.path}:${i.line}${i.column ? `:${i.column}` : ""}`;
}

function IssueRow({ i }: { i: Issue }) {
  return (
    <tr data-testid="issue-row" data-new={String(i.new)}>
      <td className="mono">{issuePlace(i)}</td>
      <td>
        {i.tool} <span className="mono muted">{i.symbol}</span>
      </td>
      <td>
        <span className={`chip issue-${i.type}`}>{i.type}</span> {i.message}
      </td>
      <td>{i.new ? <span className="chip change-new" data-testid="issue-new">new</span> : i.new === null ? <span className="muted small">not analysed</span> : null}</td>
      <td className="num" data-testid="issue-age">
        {i.age ?? "–"}
      </td>
    </tr>
  );
}

export default function RunIssues({ runId }: { runId: number }) {
  const [newOnly, setNewOnly] = useState(false);
  const q = useRunIssues(runId, newOnly);
  if (q.isPending) return <Loading what="Loading the linter issues" />;
  if (q.isError) return <ErrorBox error={q.error} retry={() => q.refetch()} title="The linter issues cannot be read" />;
  const issues = q.data.pages.flatMap((p) => p.items);
  const total = q.data.pages[0]?.total ?? 0;
  return (
    <section data-testid="run-issues">
      <div className="results-meta muted small">
        <span data-testid="issues-total">{plural(total, newOnly ? "new issue" : "issue")}</span>
        <label>
          <input type="checkbox" checked={newOnly} onChange={(e) => setNewOnly(e.target.checked)} data-testid="issues-new-only" /> new only
        </label>
      </div>
      {total === 0 ? (
        <Empty title={newOnly ? "No new linter issue" : "No linter issue"}>Linter steps (pylint, flake8, ruff, …) report them.</Empty>
      ) : (
        <div className="table-wrap">
          <table className="table" aria-label="Linter issues">
            <thead>
              <tr>
                <th>Where</th>
                <th>Linter</th>
                <th>Message</th>
                <th />
                <th className="num" title="CI flows the issue has been there before this one">
                  Age
                </th>
              </tr>
            </thead>
            <tbody>
              {issues.map((i) => (
                <IssueRow key={i.id} i={i} />
              ))}
            </tbody>
          </table>
        </div>
      )}
      {q.hasNextPage && (
        <button className="btn ghost small" disabled={q.isFetchingNextPage} onClick={() => void q.fetchNextPage()}>
          More issues
        </button>
      )}
    </section>
  );
}
