/**
 * A run's artifacts (GET /api/runs/{id}/artifacts) with their sizes and downloads. A download's
 * address is made on click with a short-lived stream token (`streamUrl`, purpose "download"):
 * the login token never goes in an address. An HTML report's entry (the artifacts tool's
 * `report_entry`) also gets a Report link: a new tab on the report's own path, the token in the
 * path so that the report's relative links keep it; the server sandboxes the report (CSP).
 */
import { useState } from "react";
import { useRunArtifacts } from "../api/queries";
import type { Artifact } from "../api/types";
import { streamToken, streamUrl } from "../lib/auth";
import { download } from "../lib/download";
import { formatBytes, formatCount, plural } from "../lib/format";
import { Empty, ErrorBox, Loading } from "./ui";

function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** The address of a report's entry page, with a download stream token in its path. */
export function reportUrl(a: Pick<Artifact, "id" | "run_id" | "path">, token: string | null): string {
  return `/api/runs/${a.run_id}/reports/${a.id}/${encodeURIComponent(token ?? "-")}/${encodeURIComponent(basename(a.path))}`;
}

function ArtifactRow({ a }: { a: Artifact }) {
  const [error, setError] = useState<string | null>(null);
  const get = () => download(() => streamUrl(`/api/artifacts/${a.id}/content`, "download"), basename(a.path)).catch((e: unknown) => setError(String(e)));
  const report = () =>
    streamToken("download")
      .then((t) => void window.open(reportUrl(a, t), "_blank", "noopener,noreferrer"))
      .catch((e: unknown) => setError(String(e)));
  return (
    <tr data-testid="artifact-row">
      <td className="mono">
        {a.path}
        {a.public && <span className="chip subtle">public</span>}
      </td>
      <td>{a.stage_name}</td>
      <td className="num" title={`${formatCount(a.size)} bytes`} data-testid="artifact-size">
        {formatBytes(a.size)}
      </td>
      <td>
        <button className="btn small" onClick={() => void get()} data-testid="artifact-download">
          Download
        </button>
        {a.report_entry && (
          <button className="btn small" onClick={() => void report()} data-testid="artifact-report">
            Report
          </button>
        )}
        {error && <span className="error small">{error}</span>}
      </td>
    </tr>
  );
}

export default function RunArtifacts({ runId }: { runId: number }) {
  const q = useRunArtifacts(runId);
  if (q.isPending) return <Loading what="Loading the artifacts" />;
  if (q.isError) return <ErrorBox error={q.error} retry={() => q.refetch()} title="The artifacts cannot be read" />;
  if (q.data.length === 0) return <Empty title="This run has no artifacts">The artifacts tool uploads files of a job.</Empty>;
  const total = q.data.reduce((n, a) => n + a.size, 0);
  return (
    <section data-testid="run-artifacts">
      <div className="results-meta muted small">
        {plural(q.data.length, "artifact")}, {formatBytes(total)}
      </div>
      <div className="table-wrap">
        <table className="table" aria-label="Artifacts">
          <thead>
            <tr>
              <th>Path</th>
              <th>Stage</th>
              <th className="num">Size</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {q.data.map((a) => (
              <ArtifactRow key={a.id} a={a} />
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
