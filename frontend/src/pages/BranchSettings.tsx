/** A branch's settings tab: name, git branch, repository, environment variables, sequence counters,
 * archive and delete. */
import { useState } from "react";
import { qk } from "../lib/queryKeys";
import { useLocation } from "wouter";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { deleteBranch, patchBranch, setBranchArchived, setSequences } from "../api/admin";
import type { Branch } from "../api/types";
import { ConfirmDelete } from "../components/ConfirmDelete";
import { QuarantineSettings } from "../components/QuarantineSettings";
import { FormError } from "../components/ui";

type WithEnv = Branch & { env_vars?: Record<string, string> };

/** "KEY=value" lines to a mapping; a line without "=" is an error naming its number. */
export function parseEnvLines(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    const eq = line.indexOf("=");
    if (eq <= 0) throw new Error(`line ${i + 1}: write NAME=value`);
    out[line.slice(0, eq).trim()] = line.slice(eq + 1);
  });
  return out;
}

export const envLines = (env: Record<string, string> | undefined) =>
  Object.entries(env ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join("\n");

function EditBranch({ branch }: { branch: WithEnv }) {
  const qc = useQueryClient();
  const [name, setName] = useState(branch.name);
  const [gitBranch, setGitBranch] = useState(branch.branch_name);
  const [repo, setRepo] = useState(branch.repo_url ?? "");
  const [env, setEnv] = useState(envLines(branch.env_vars));
  const save = useMutation({
    mutationFn: () => patchBranch(branch.id, { name, branch_name: gitBranch, repo_url: repo || null, env_vars: parseEnvLines(env) }),
    onSuccess: (b) => {
      qc.setQueryData(["branch", branch.id], b);
      void qc.invalidateQueries({ queryKey: qk.projects() });
    },
  });
  return (
    <form
      className="form"
      data-testid="branch-edit"
      onSubmit={(e) => {
        e.preventDefault();
        save.mutate();
      }}
    >
      <label>
        Name <input name="name" value={name} onChange={(e) => setName(e.target.value)} required />
      </label>
      <label>
        Git branch <input name="branch_name" value={gitBranch} onChange={(e) => setGitBranch(e.target.value)} required />
      </label>
      <label>
        Repository URL <input name="repo_url" value={repo} onChange={(e) => setRepo(e.target.value)} placeholder="https://… (optional)" />
      </label>
      <label>
        Environment variables <span className="muted small">one NAME=value a line; stage code reads them as ctx.env and #{"{env.NAME}"}</span>
        <textarea name="env_vars" rows={4} className="mono" value={env} onChange={(e) => setEnv(e.target.value)} />
      </label>
      <FormError error={save.error} />
      <div className="form-actions left">
        <button type="submit" className="btn primary" disabled={save.isPending}>
          Save
        </button>
        {save.isSuccess && <span className="muted small">saved</span>}
      </div>
    </form>
  );
}

const COUNTERS = [
  ["ci_flow_seq", "CI flows"],
  ["dev_flow_seq", "Dev flows"],
  ["run_seq", "Runs"],
] as const;

function Sequences({ branch }: { branch: Branch }) {
  const qc = useQueryClient();
  const [values, setValues] = useState<Record<string, string>>({});
  const save = useMutation({
    mutationFn: () => {
      const body: Record<string, number> = {};
      for (const [key] of COUNTERS) if (values[key] !== undefined && values[key] !== "") body[key] = Number(values[key]);
      return setSequences(branch.id, body);
    },
    onSuccess: (b) => {
      qc.setQueryData(["branch", branch.id], b);
      setValues({});
    },
  });
  return (
    <form
      className="form"
      data-testid="sequences"
      onSubmit={(e) => {
        e.preventDefault();
        save.mutate();
      }}
    >
      <p className="muted small">The last number given out; the next flow or run gets the one after. None can go below a number already used.</p>
      {COUNTERS.map(([key, label]) => (
        <label key={key}>
          {label}
          <input
            name={key}
            type="number"
            min={0}
            value={values[key] ?? ""}
            placeholder={String(branch[key] ?? 0)}
            onChange={(e) => setValues({ ...values, [key]: e.target.value })}
          />
        </label>
      ))}
      <FormError error={save.error} />
      <div className="form-actions left">
        <button type="submit" className="btn" disabled={save.isPending || !Object.values(values).some((v) => v !== "")}>
          Set counters
        </button>
      </div>
    </form>
  );
}

export default function BranchSettings({ branch }: { branch: WithEnv }) {
  const qc = useQueryClient();
  const [, navigate] = useLocation();
  const [deleting, setDeleting] = useState(false);
  const archive = useMutation({
    mutationFn: () => setBranchArchived(branch.id, !branch.archived),
    onSuccess: (b) => {
      qc.setQueryData(["branch", branch.id], b);
      void qc.invalidateQueries({ queryKey: qk.projects() });
    },
  });
  return (
    <div className="stack">
      <section className="card">
        <h2>Branch</h2>
        <EditBranch key={branch.id} branch={branch} />
      </section>
      <section className="card">
        <h2>Sequence counters</h2>
        <Sequences branch={branch} />
      </section>
      <section className="card">
        <h2>Quarantine of tests</h2>
        <p className="muted small">A quarantined test still runs and its results are recorded; its failures do not make a run fail.</p>
        <QuarantineSettings branchId={branch.id} />
      </section>
      <section className="card">
        <h2>Archive or delete</h2>
        <p className="muted">
          An archived branch is hidden from the projects list; no flow starts on it and its triggers do not fire. Deleting removes its stages, flows, logs, artifacts
          and test results.
        </p>
        <FormError error={archive.error} />
        <div className="form-actions left">
          <button className="btn" onClick={() => archive.mutate()} disabled={archive.isPending}>
            {branch.archived ? "Unarchive branch" : "Archive branch"}
          </button>
          <button className="btn danger" onClick={() => setDeleting(true)}>
            Delete branch…
          </button>
        </div>
      </section>
      <ConfirmDelete
        open={deleting}
        onClose={() => setDeleting(false)}
        what="branch"
        name={branch.name}
        consequences="its stages, flows, logs, artifacts and test results"
        action={() => deleteBranch(branch.id)}
        onDone={() => {
          void qc.invalidateQueries({ queryKey: qk.projects() });
          navigate("/");
        }}
      />
    </div>
  );
}
