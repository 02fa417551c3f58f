import { useEffect, useRef, useState } from "react";
import { Link, useLocation } from "wouter";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { ApiError, client, unwrap } from "../api/client";
import { useBranch, useProject, useStage } from "../api/queries";
import type { Stage, StageError, StageSchema } from "../api/types";
import { CodeEditor, type CodeEditorHandle } from "../components/CodeEditor";
import { PageHeader } from "../components/Layout";
import { ErrorBox, Skeleton, useTitle } from "../components/ui";
import { errorLine } from "../lib/stageError";
import { qk } from "../lib/queryKeys";

export const TEMPLATE = `def stage(ctx):
    return {
        "parent": "root",
        "parameters": [
            {"name": "greeting", "type": "string", "default": "hello"},
        ],
        "jobs": [{
            "name": "tests",
            "steps": [
                {"tool": "shell", "cmd": "echo '#{greeting}'"},
            ],
            "environments": [{"system": "any", "agents_group": "all", "executor": "local"}],
        }],
    }
`;

function stageError(e: unknown): StageError | null {
  if (e instanceof ApiError && e.status === 422 && e.detail && typeof e.detail === "object") {
    const d = (e.detail as { detail?: unknown }).detail;
    if (d && typeof d === "object" && "message" in d) return d as StageError;
  }
  return null;
}

function SchemaSummary({ schema }: { schema: StageSchema }) {
  return (
    <div className="schema-summary" data-testid="schema-summary">
      <div>
        <b>parent</b> <span className="mono">{schema.parent ?? "root"}</span>
      </div>
      {schema.parameters && schema.parameters.length > 0 && (
        <div>
          <b>parameters</b> <span className="mono">{schema.parameters.map((p) => `${p.name}: ${p.type}${p.default !== undefined ? ` = ${JSON.stringify(p.default)}` : ""}`).join(", ")}</span>
        </div>
      )}
      {schema.configs && schema.configs.length > 0 && (
        <div>
          <b>configs</b> <span className="mono">{schema.configs.map((c) => c.name).join(", ")}</span>
        </div>
      )}
      <div>
        <b>jobs</b> <span className="mono">{(schema.jobs ?? []).map((j) => j.name).join(", ")}</span>
      </div>
      <details>
        <summary>normalized schema</summary>
        <pre className="code-block">{JSON.stringify(schema, null, 2)}</pre>
      </details>
    </div>
  );
}

type RepoFields = { repo_url: string; repo_branch: string; schema_file: string; repo_access_token: string };

function repoFields(stage?: Stage): RepoFields {
  return {
    repo_url: stage?.repo_url ?? "",
    repo_branch: stage?.repo_branch ?? "main",
    schema_file: stage?.schema_file ?? "",
    repo_access_token: stage?.repo_access_token ?? "",
  };
}

/** The body's code fields: inline code, or where the code is in a repository. */
export function sourceBody(fromRepo: boolean, repo: RepoFields, code: string) {
  if (!fromRepo) return { schema_from_repo: false, schema_code: code };
  return {
    schema_from_repo: true,
    repo_url: repo.repo_url.trim(),
    repo_branch: repo.repo_branch.trim(),
    schema_file: repo.schema_file.trim(),
    repo_access_token: repo.repo_access_token.trim(),
  };
}

function RepoForm({ repo, onChange, stage }: { repo: RepoFields; onChange: (r: RepoFields) => void; stage?: Stage }) {
  const field = (key: keyof RepoFields, label: string, placeholder: string, grow = false) => (
    <label className={grow ? "grow" : undefined}>
      {label}
      <input name={key} value={repo[key]} placeholder={placeholder} onChange={(e) => onChange({ ...repo, [key]: e.target.value })} data-testid={`stage-${key}`} />
    </label>
  );
  return (
    <div className="repo-source" data-testid="repo-source">
      <div className="editor-fields">
        {field("repo_url", "Repository URL", "https://github.com/org/repo.git", true)}
        {field("repo_branch", "Branch", "main")}
      </div>
      <div className="editor-fields">
        {field("schema_file", "File", "ci/stage.star", true)}
        {field("repo_access_token", "Access token (a project secret's name, optional)", "")}
      </div>
      {stage?.schema_from_repo && stage.schema_commit && (
        <div className="muted small" data-testid="stage-schema-commit">
          Checked when saved at commit <span className="mono" title={stage.schema_commit}>{stage.schema_commit.slice(0, 12)}</span>; each run reads the branch's latest commit and shows it.
        </div>
      )}
    </div>
  );
}

function Editor({ stage, branchId }: { stage?: Stage; branchId: number }) {
  const qc = useQueryClient();
  const [, navigate] = useLocation();
  const editor = useRef<CodeEditorHandle>(null);
  const [name, setName] = useState(stage?.name ?? "");
  const [description, setDescription] = useState(stage?.description ?? "");
  const [enabled, setEnabled] = useState(stage?.enabled ?? true);
  const [code, setCode] = useState(stage?.schema_from_repo ? TEMPLATE : (stage?.schema_code ?? TEMPLATE));
  const [fromRepo, setFromRepo] = useState(stage?.schema_from_repo ?? false);
  const [repo, setRepo] = useState<RepoFields>(() => repoFields(stage));
  const [problem, setProblem] = useState<{ err: StageError; at: ReturnType<typeof errorLine> } | null>(null);
  const [checked, setChecked] = useState<StageSchema | null>(stage?.schema ?? null);
  const [saved, setSaved] = useState<boolean>(() => !!(window.history.state as { saved?: boolean } | null)?.saved); // just created
  const repoDirty = !!stage && (fromRepo !== stage.schema_from_repo || (fromRepo && JSON.stringify(repo) !== JSON.stringify(repoFields(stage))));
  const codeDirty = !!stage && !fromRepo && code !== stage.schema_code;
  const dirty = !stage || codeDirty || repoDirty || name !== stage.name || description !== stage.description || enabled !== stage.enabled;

  const fail = (e: unknown, text: string) => {
    const err = stageError(e);
    if (!err) return;
    const at = errorLine(err, text);
    setProblem({ err, at });
    editor.current?.show(at ? { line: at.line, column: at.column, message: err.message } : null);
  };

  const save = useMutation({
    mutationFn: async () => {
      setProblem(null);
      setSaved(false);
      const source = sourceBody(fromRepo, repo, code);
      if (stage) {
        const changed = fromRepo ? repoDirty : codeDirty || repoDirty;
        return unwrap(
          client.PUT("/api/stages/{stage_id}", {
            params: { path: { stage_id: stage.id } },
            body: { name, description, enabled, ...(changed ? source : {}) },
          }),
        ) as Promise<Stage>;
      }
      return unwrap(client.POST("/api/branches/{branch_id}/stages", { params: { path: { branch_id: branchId } }, body: { name, description, enabled, ...source } })) as Promise<Stage>;
    },
    onSuccess: (s) => {
      qc.setQueryData(qk.stage(s.id), s);
      void qc.invalidateQueries({ queryKey: qk.stages(s.branch_id) });
      setChecked(s.schema ?? null);
      setSaved(true);
      editor.current?.show(null);
      if (!stage) navigate(`/stages/${s.id}`, { replace: true, state: { saved: true } });
    },
    onError: (e) => fail(e, code),
  });

  const check = useMutation({
    mutationFn: () => {
      setProblem(null);
      return unwrap(client.POST("/api/stages/check", { body: { schema_code: code } })) as Promise<{ schema: StageSchema }>;
    },
    onSuccess: (r) => {
      setChecked(r.schema);
      editor.current?.show(null);
    },
    onError: (e) => fail(e, code),
  });

  const toggleEnabled = useMutation({
    mutationFn: () => unwrap(client.PUT("/api/stages/{stage_id}", { params: { path: { stage_id: stage!.id } }, body: { enabled: !stage!.enabled } })) as Promise<Stage>,
    onSuccess: (s) => {
      qc.setQueryData(qk.stage(s.id), s);
      setEnabled(s.enabled);
      void qc.invalidateQueries({ queryKey: qk.stages(s.branch_id) });
    },
  });

  useEffect(() => {
    const warn = (e: BeforeUnloadEvent) => {
      if (dirty && !saved) e.preventDefault();
    };
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, [dirty, saved]);

  const other = save.error && !stageError(save.error) ? save.error : check.error && !stageError(check.error) ? check.error : toggleEnabled.error;
  return (
    <div className="stage-editor">
      <div className="editor-fields">
        <label>
          Name
          <input name="name" value={name} onChange={(e) => setName(e.target.value)} required placeholder="tests" data-testid="stage-name" />
        </label>
        <label className="grow">
          Description
          <input name="description" value={description} onChange={(e) => setDescription(e.target.value)} />
        </label>
        {stage ? (
          <label className="check">
            <input type="checkbox" checked={enabled} onChange={() => toggleEnabled.mutate()} disabled={toggleEnabled.isPending} data-testid="stage-enabled" />
            Enabled
          </label>
        ) : (
          <label className="check">
            <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.target.checked)} />
            Enabled
          </label>
        )}
      </div>
      <div className="editor-fields" role="radiogroup" aria-label="Stage code">
        <label className="check">
          <input type="radio" name="source" checked={!fromRepo} onChange={() => { setFromRepo(false); setSaved(false); }} data-testid="source-inline" />
          Code in the stage
        </label>
        <label className="check">
          <input type="radio" name="source" checked={fromRepo} onChange={() => { setFromRepo(true); setSaved(false); }} data-testid="source-repo" />
          Code from a repository (read at each run)
        </label>
      </div>
      {fromRepo ? (
        <RepoForm repo={repo} onChange={(r) => { setRepo(r); setSaved(false); }} stage={stage} />
      ) : (
        <CodeEditor ref={editor} value={code} onChange={(v) => { setCode(v); setSaved(false); }} onSave={() => name && save.mutate()} />
      )}
      {problem && (
        <div className="form-error stage-error" role="alert" data-testid="stage-error">
          {problem.at && !fromRepo ? (
            <button className="link" onClick={() => editor.current?.show({ line: problem.at!.line, column: problem.at!.column, message: problem.err.message })}>
              {problem.at.approx ? "near line" : "line"} {problem.at.line}
              {problem.at.column ? `, column ${problem.at.column}` : ""}
            </button>
          ) : null}
          {problem.at && !fromRepo ? ": " : ""}
          {problem.err.message}
          {problem.err.path && <span className="mono small"> ({problem.err.path})</span>}
        </div>
      )}
      {other && <div className="form-error">{other.message}</div>}
      <div className="form-actions left">
        <button className="btn primary" onClick={() => save.mutate()} disabled={save.isPending || !name || (!!stage && !dirty)} data-testid="stage-save">
          {save.isPending ? "Saving…" : stage ? "Save (Ctrl+S)" : "Create stage (Ctrl+S)"}
        </button>
        {!fromRepo && (
          <button className="btn" onClick={() => check.mutate()} disabled={check.isPending}>
            Check
          </button>
        )}
        {saved && !save.isPending && <span className="ok" data-testid="stage-saved">Saved ✓</span>}
        <Link href={`/branches/${branchId}/stages`} className="btn ghost">
          Back to the stages
        </Link>
      </div>
      {checked && <SchemaSummary schema={checked} />}
    </div>
  );
}

export default function StageEditorPage({ id, branchId }: { id?: number; branchId?: number }) {
  const stage = useStage(id);
  const bid = branchId ?? stage.data?.branch_id;
  const branch = useBranch(bid);
  const project = useProject(branch.data?.project_id);
  useTitle(id ? `Stage ${stage.data?.name ?? ""}` : "New stage");
  if (id !== undefined && stage.isError) return <ErrorBox error={stage.error} retry={() => stage.refetch()} />;
  if (id !== undefined && !stage.data) return <Skeleton rows={12} />;
  return (
    <>
      <PageHeader
        crumbs={[
          { label: "Projects", href: "/" },
          { label: project.data?.name ?? "…" },
          { label: branch.data?.name ?? "…", href: bid ? `/branches/${bid}/stages` : undefined },
        ]}
        title={id ? <>Stage <span className="mono">{stage.data?.name}</span></> : "New stage"}
      />
      <Editor key={stage.data?.id ?? "new"} stage={stage.data} branchId={bid!} />
    </>
  );
}
