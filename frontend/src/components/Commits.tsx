/** A flow's repository state ("repo changes"): the commit it ran on, per repository, and the new
 * commits its trigger brought. */
import type { Flow } from "../api/types";

type RepoState = NonNullable<Flow["commits"]>[number];

const SOURCES: Record<string, string> = { webhook: "webhook", repository: "repository poll", git: "git checkout" };

export const shortSha = (sha: string) => sha.slice(0, 10);

export function firstLine(message: string | null | undefined): string {
  return (message ?? "").split("\n", 1)[0];
}

/** One line for the flows list: the commit and how many new commits came with it. */
export function CommitsCell({ commits }: { commits: RepoState[] | undefined }) {
  const first = commits?.[0];
  if (!first) return <span className="muted">–</span>;
  const n = first.new_commits?.length ?? 0;
  const title = [`${first.repo_url ?? ""} ${first.branch ?? ""}`.trim(), ...(first.new_commits ?? []).map((c) => `${shortSha(c.id)} ${c.author ?? ""}: ${firstLine(c.message)}`)].join("\n");
  return (
    <span title={title} data-testid="flow-commit">
      <span className="mono small">{shortSha(first.commit)}</span>
      {first.branch && <span className="muted small"> {first.branch}</span>}
      {n > 0 && <span className="chip subtle">{n === 1 ? "1 new commit" : `${n} new commits`}</span>}
    </span>
  );
}

/** The flow page's section: every repository with its commit and new commits. */
export function RepoChanges({ commits }: { commits: RepoState[] | undefined }) {
  if (!commits?.length) return null;
  return (
    <section className="card repo-changes" data-testid="repo-changes">
      <h2>Repo changes</h2>
      {commits.map((c) => (
        <div key={`${c.repo_url}#${c.commit}`} className="repo-state">
          <div>
            <span className="mono">{c.repo_url ?? "repository"}</span>
            {c.branch && <span className="chip mono">{c.branch}</span>}
            <span className="mono strong">{shortSha(c.commit)}</span>
            <span className="muted small"> from the {SOURCES[c.source] ?? c.source}</span>
          </div>
          {(c.new_commits?.length ?? 0) > 0 && (
            <table className="table compact">
              <tbody>
                {(c.new_commits ?? []).map((n) => (
                  <tr key={n.id}>
                    <td className="mono small">{n.url ? <a href={n.url}>{shortSha(n.id)}</a> : shortSha(n.id)}</td>
                    <td>{firstLine(n.message)}</td>
                    <td className="muted small" title={n.email ?? ""}>
                      {n.author ?? ""}
                    </td>
                    <td className="muted small">{n.timestamp ?? ""}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      ))}
    </section>
  );
}
