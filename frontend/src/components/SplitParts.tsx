import type { Job } from "../api/types";
import { Elapsed } from "./ui";

interface Group {
  name: string;
  parts: Job[];
}

/** The run's jobs split by timing ("parallel": N), grouped by the job they were split from. */
export function splitGroups(jobs: Job[]): Group[] {
  const groups = new Map<string, Job[]>();
  for (const j of jobs) {
    if (!j.split || j.covered) continue;
    const list = groups.get(j.split.group) ?? [];
    list.push(j);
    groups.set(j.split.group, list);
  }
  return [...groups.entries()].map(([name, parts]) => ({ name, parts: parts.sort((a, b) => (a.split?.part ?? 0) - (b.split?.part ?? 0)) }));
}

/** One line per split job: its parts, each with its time (one suite: the results merge in the run). */
export function SplitParts({ jobs }: { jobs: Job[] }) {
  const groups = splitGroups(jobs);
  if (!groups.length) return null;
  return (
    <div className="split-parts" data-testid="split-parts">
      {groups.map((g) => (
        <div key={g.name} className="meta-line">
          <span>
            <span className="mono">{g.name}</span> split by timing into {g.parts[0].split?.parts} parts:
          </span>
          {g.parts.map((p) => (
            <span key={p.id} className="chip" title={`${p.name}: ${p.tests_total} tests`} data-testid="split-part">
              {p.split?.part}/{p.split?.parts} · {p.tests_total} tests · <Elapsed start={p.started} end={p.finished} />
            </span>
          ))}
        </div>
      ))}
    </div>
  );
}
