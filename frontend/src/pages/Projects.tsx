import { useState, type FormEvent } from "react";
import { Link, useLocation } from "wouter";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { client, unwrap } from "../api/client";
import { deleteProject, patchProject, setProjectArchived } from "../api/admin";
import { useLatestFlow, useMe, useProjects } from "../api/queries";
import type { Branch, Project } from "../api/types";
import { ConfirmDelete } from "../components/ConfirmDelete";
import { PageHeader } from "../components/Layout";
import { Dialog, Elapsed, Empty, ErrorBox, FormError, Skeleton, StatusBadge, TimeAgo, useTitle } from "../components/ui";
import { formatCount } from "../lib/format";
import { qk } from "../lib/queryKeys";
import { allows, useRole } from "../lib/roles";

function BranchRow({ branch }: { branch: Branch }) {
  const latest = useLatestFlow(branch.id);
  const flow = latest.data?.flow;
  const s = latest.data?.summary;
  const passed = s ? s.passed : null;
  return (
    <tr>
      <td>
        <Link href={`/branches/${branch.id}`} className="strong">
          {branch.name}
        </Link>
        {branch.archived && <span className="chip subtle">archived</span>}
        <div className="muted small mono">{branch.branch_name}</div>
      </td>
      {latest.isPending ? (
        <td colSpan={6}>
          <span className="skeleton-inline" />
        </td>
      ) : latest.isError ? (
        <td colSpan={6} className="muted">
          cannot read the flows: {latest.error.message}
        </td>
      ) : !flow ? (
        <td colSpan={6} className="muted">
          no CI flow yet
        </td>
      ) : (
        <>
          <td>
            <Link href={`/flows/${flow.id}`} className="flow-link">
              <StatusBadge state={flow.state} result={flow.result} label={`#${flow.seq}`} />
            </Link>
          </td>
          <td>
            <TimeAgo value={flow.created} />
          </td>
          <td>
            <Elapsed start={flow.started} end={flow.finished} />
          </td>
          <td className="num">
            {s && s.total > 0 ? (
              <span title={`${s.failed + s.error} failed or errored`}>
                <span className={passed === s.total ? "ok" : ""}>{formatCount(passed)}</span>
                <span className="muted"> / {formatCount(s.total)}</span>
              </span>
            ) : (
              <span className="muted">–</span>
            )}
          </td>
          <td className="num">{s && s.regressions ? <span className="chip change-regression">{formatCount(s.regressions)}</span> : <span className="muted">0</span>}</td>
          <td className="num">{s && s.fixes ? <span className="chip change-fix">{formatCount(s.fixes)}</span> : <span className="muted">0</span>}</td>
        </>
      )}
    </tr>
  );
}

function NewBranch({ project, onClose }: { project: Project; onClose: () => void }) {
  const qc = useQueryClient();
  const [, navigate] = useLocation();
  const [name, setName] = useState("");
  const [branchName, setBranchName] = useState("");
  const [repo, setRepo] = useState("");
  const m = useMutation({
    mutationFn: () =>
      unwrap(
        client.POST("/api/projects/{project_id}/branches", {
          params: { path: { project_id: project.id } },
          body: { name, branch_name: branchName || name, repo_url: repo || null },
        }),
      ),
    onSuccess: (b) => {
      void qc.invalidateQueries({ queryKey: qk.projects() });
      onClose();
      navigate(`/branches/${b.id}`);
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    m.mutate();
  };
  return (
    <form onSubmit={submit} className="form">
      <label>
        Name <input name="name" value={name} onChange={(e) => setName(e.target.value)} required autoFocus placeholder="main" />
      </label>
      <label>
        Git branch <input name="branch_name" value={branchName} onChange={(e) => setBranchName(e.target.value)} placeholder={name || "main"} />
      </label>
      <label>
        Repository URL <input name="repo_url" value={repo} onChange={(e) => setRepo(e.target.value)} placeholder="https://… (optional)" />
      </label>
      <FormError error={m.error} />
      <div className="form-actions">
        <button type="button" className="btn" onClick={onClose}>
          Cancel
        </button>
        <button type="submit" className="btn primary" disabled={m.isPending}>
          Create branch
        </button>
      </div>
    </form>
  );
}

function NewProject({ onClose }: { onClose: () => void }) {
  const qc = useQueryClient();
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const m = useMutation({
    mutationFn: () => unwrap(client.POST("/api/projects", { body: { name, description, public: false } })),
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: qk.projects() });
      onClose();
    },
  });
  return (
    <form
      className="form"
      onSubmit={(e) => {
        e.preventDefault();
        m.mutate();
      }}
    >
      <label>
        Name <input name="name" value={name} onChange={(e) => setName(e.target.value)} required autoFocus />
      </label>
      <label>
        Description <input name="description" value={description} onChange={(e) => setDescription(e.target.value)} />
      </label>
      <FormError error={m.error} />
      <div className="form-actions">
        <button type="button" className="btn" onClick={onClose}>
          Cancel
        </button>
        <button type="submit" className="btn primary" disabled={m.isPending}>
          Create project
        </button>
      </div>
    </form>
  );
}

function ProjectSettings({ project, onClose }: { project: Project; onClose: () => void }) {
  const qc = useQueryClient();
  const [name, setName] = useState(project.name);
  const [description, setDescription] = useState(project.description);
  const [deleting, setDeleting] = useState(false);
  const done = () => void qc.invalidateQueries({ queryKey: qk.projects() });
  const save = useMutation({
    mutationFn: () => patchProject(project.id, { name, description }),
    onSuccess: () => {
      done();
      onClose();
    },
  });
  const archive = useMutation({
    mutationFn: () => setProjectArchived(project.id, !project.archived),
    onSuccess: () => {
      done();
      onClose();
    },
  });
  return (
    <>
      <form
        className="form"
        onSubmit={(e) => {
          e.preventDefault();
          save.mutate();
        }}
      >
        <label>
          Name <input name="name" value={name} onChange={(e) => setName(e.target.value)} required />
        </label>
        <label>
          Description <input name="description" value={description} onChange={(e) => setDescription(e.target.value)} />
        </label>
        <FormError error={save.error ?? archive.error} />
        <div className="form-actions">
          <button type="button" className="btn danger" onClick={() => setDeleting(true)}>
            Delete…
          </button>
          <button type="button" className="btn" onClick={() => archive.mutate()} disabled={archive.isPending}
            title={project.archived ? "Show it again and let its flows start" : "Hide it from the lists; no flow starts, no trigger fires"}>
            {project.archived ? "Unarchive" : "Archive"}
          </button>
          <button type="submit" className="btn primary" disabled={save.isPending}>
            Save
          </button>
        </div>
      </form>
      <ConfirmDelete
        open={deleting}
        onClose={() => setDeleting(false)}
        what="project"
        name={project.name}
        consequences="all its branches, stages, flows, logs, artifacts, test results and secrets"
        action={() => deleteProject(project.id)}
        onDone={() => {
          setDeleting(false);
          done();
          onClose();
        }}
      />
    </>
  );
}

function ProjectCard({ project }: { project: Project }) {
  const [adding, setAdding] = useState(false);
  const [editing, setEditing] = useState(false);
  const canMaintain = allows(useRole(project.id), "maintainer");
  return (
    <section className="card project-card" data-testid={`project-${project.name}`}>
      <div className="card-head">
        <div>
          <h2>
            {project.name} {project.archived && <span className="chip subtle">archived</span>}
          </h2>
          {project.description && <div className="muted">{project.description}</div>}
        </div>
        <div className="form-actions">
          <Link href={`/projects/${project.id}/members`} className="btn">
            Members
          </Link>
          {canMaintain && (
            <>
              <Link href={`/projects/${project.id}/secrets`} className="btn">
                Secrets
              </Link>
              <button className="btn" onClick={() => setEditing(true)}>
                Settings
              </button>
              <button className="btn" onClick={() => setAdding(true)}>
                + Branch
              </button>
            </>
          )}
        </div>
      </div>
      {project.branches && project.branches.length ? (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th>Branch</th>
                <th>Latest CI flow</th>
                <th>When</th>
                <th>Duration</th>
                <th className="num">Tests passed</th>
                <th className="num">Regressions</th>
                <th className="num">Fixes</th>
              </tr>
            </thead>
            <tbody>
              {project.branches.map((b) => (
                <BranchRow key={b.id} branch={b} />
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <Empty title="No branches yet" icon="⑂">
          A branch holds the stages that CI runs.{" "}
          {canMaintain && (
            <>
              <button className="link" onClick={() => setAdding(true)}>Add the first branch</button>.
            </>
          )}
        </Empty>
      )}
      <Dialog open={adding} onClose={() => setAdding(false)} title={`New branch of ${project.name}`}>
        <NewBranch project={project} onClose={() => setAdding(false)} />
      </Dialog>
      <Dialog open={editing} onClose={() => setEditing(false)} title={`Project ${project.name}`}>
        <ProjectSettings project={project} onClose={() => setEditing(false)} />
      </Dialog>
    </section>
  );
}

export default function ProjectsPage() {
  useTitle("Projects");
  const [archived, setArchived] = useState(false);
  const projects = useProjects(archived);
  const [creating, setCreating] = useState(false);
  const isAdmin = !!useMe().data?.is_admin;
  return (
    <>
      <PageHeader
        title="Projects"
        actions={
          <>
            <label className="check">
              <input type="checkbox" name="show_archived" checked={archived} onChange={(e) => setArchived(e.target.checked)} />
              Show archived
            </label>
            {isAdmin && (
              <button className="btn primary" onClick={() => setCreating(true)}>
                + New project
              </button>
            )}
          </>
        }
      />
      {projects.isPending ? (
        <Skeleton rows={6} />
      ) : projects.isError ? (
        <ErrorBox error={projects.error} retry={() => projects.refetch()} />
      ) : projects.data.length === 0 ? (
        <Empty title="No projects yet" icon="▦">
          Create a project, add a branch and its stages, then run a flow. <button className="link" onClick={() => setCreating(true)}>Create a project</button>.
        </Empty>
      ) : (
        <div className="stack">
          {projects.data.map((p) => (
            <ProjectCard key={p.id} project={p} />
          ))}
        </div>
      )}
      <Dialog open={creating} onClose={() => setCreating(false)} title="New project">
        <NewProject onClose={() => setCreating(false)} />
      </Dialog>
    </>
  );
}
