/** The stages of a flow as a tree (parent → child), left to right, with each run's state.
 * Stages form a tree (one parent each), so a tidy layered layout needs no graph library. */
import { useMemo } from "react";
import type { RunBrief, Stage } from "../api/types";
import { duration, formatSeconds } from "../lib/format";
import { useNow } from "../lib/clock";
import { outcome } from "./ui";

export interface GraphNode {
  name: string;
  parent: string | null;
  depth: number;
  row: number;
  runs: RunBrief[];
}

const W = 190;
const H = 58;
const GX = 56;
const GY = 16;

/** Layout: depth = column; leaves take consecutive rows in depth-first order, a parent sits at the middle of its children. */
export function layoutStages(stages: Pick<Stage, "name" | "parent" | "enabled">[], runs: RunBrief[]): GraphNode[] {
  const runsBy = new Map<string, RunBrief[]>();
  for (const r of runs) runsBy.set(r.stage_name, [...(runsBy.get(r.stage_name) ?? []), r]);
  const parentOf = new Map<string, string | null>();
  for (const s of stages) if (s.enabled || runsBy.has(s.name)) parentOf.set(s.name, s.parent && s.parent !== "root" ? s.parent : null);
  for (const name of runsBy.keys()) if (!parentOf.has(name)) parentOf.set(name, null);
  // a parent that is not shown (disabled, deleted) makes its child a root
  for (const [name, parent] of parentOf) if (parent && !parentOf.has(parent)) parentOf.set(name, null);
  const children = new Map<string | null, string[]>();
  for (const [name, parent] of parentOf) children.set(parent, [...(children.get(parent) ?? []), name]);
  const order = (names: string[]) =>
    names.sort((a, b) => (runsBy.get(a)?.[0]?.id ?? Infinity) - (runsBy.get(b)?.[0]?.id ?? Infinity) || a.localeCompare(b));
  const nodes: GraphNode[] = [];
  let nextRow = 0;
  const seen = new Set<string>();
  const place = (name: string, depth: number): number => {
    seen.add(name);
    const kids = order(children.get(name) ?? []).filter((k) => !seen.has(k));
    const node: GraphNode = { name, parent: parentOf.get(name) ?? null, depth, row: 0, runs: runsBy.get(name) ?? [] };
    nodes.push(node);
    if (!kids.length) node.row = nextRow++;
    else {
      const rows = kids.map((k) => place(k, depth + 1));
      node.row = (rows[0] + rows[rows.length - 1]) / 2;
    }
    return node.row;
  };
  for (const root of order(children.get(null) ?? [])) place(root, 0);
  // cycles (should not exist: the server checks the graph) end up as roots
  for (const name of parentOf.keys()) if (!seen.has(name)) place(name, 0);
  return nodes;
}

function NodeBox({ node, selected, onSelect, now }: { node: GraphNode; selected: boolean; onSelect: (r: RunBrief) => void; now: number }) {
  const run = node.runs[node.runs.length - 1];
  const o = run ? outcome(run.state, run.result) : "pending";
  const d = run ? duration(run.started, run.finished, now) : null;
  return (
    <button
      className={`gnode st-${o}${selected ? " selected" : ""}${run ? "" : " pending"}`}
      style={{ left: node.depth * (W + GX), top: node.row * (H + GY), width: W, height: H }}
      onClick={() => run && onSelect(run)}
      disabled={!run}
      data-testid={`stage-node-${node.name}`}
      title={run?.reason ?? (run ? o : "not started")}
    >
      <span className="gnode-name">{node.name}</span>
      <span className="gnode-meta">
        <span className={`gnode-state st-${o}`}>{run ? o : "not started"}</span>
        {run && <span>{run.jobs_total} job{run.jobs_total === 1 ? "" : "s"}</span>}
        {d !== null && <span className="num">{formatSeconds(d)}</span>}
        {node.runs.length > 1 && <span title="runs of this stage in the flow">×{node.runs.length}</span>}
      </span>
    </button>
  );
}

export function StageGraph({ stages, runs, selectedRun, onSelect }: { stages: Pick<Stage, "name" | "parent" | "enabled">[]; runs: RunBrief[]; selectedRun?: number; onSelect: (r: RunBrief) => void }) {
  const nodes = useMemo(() => layoutStages(stages, runs), [stages, runs]);
  const running = runs.some((r) => r.state !== "completed");
  const now = useNow(1000, running);
  const pos = new Map(nodes.map((n) => [n.name, n]));
  const width = (Math.max(0, ...nodes.map((n) => n.depth)) + 1) * (W + GX) - GX;
  const height = (Math.max(0, ...nodes.map((n) => n.row)) + 1) * (H + GY) - GY;
  return (
    <div className="graph-scroll" data-testid="stage-graph">
      <div className="graph" style={{ width, height }}>
        <svg width={width} height={height} className="graph-edges" aria-hidden>
          {nodes
            .filter((n) => n.parent && pos.has(n.parent))
            .map((n) => {
              const p = pos.get(n.parent!)!;
              const x1 = p.depth * (W + GX) + W;
              const y1 = p.row * (H + GY) + H / 2;
              const x2 = n.depth * (W + GX);
              const y2 = n.row * (H + GY) + H / 2;
              const mx = (x1 + x2) / 2;
              return <path key={n.name} d={`M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`} />;
            })}
        </svg>
        {nodes.map((n) => (
          <NodeBox key={n.name} node={n} now={now} selected={n.runs.some((r) => r.id === selectedRun)} onSelect={onSelect} />
        ))}
      </div>
    </div>
  );
}
