/** Project and branch management calls (kraken/api/routes/branches_admin.py). */
import { auth } from "../lib/auth";
import { ApiError, client, unwrap } from "./client";
import type { Branch, Project } from "./types";

export interface BranchEdit {
  name?: string;
  branch_name?: string;
  repo_url?: string | null;
  env_vars?: Record<string, string>;
}

/** PATCH /api/branches/{id}: name, git branch, repository URL, environment variables. */
export async function patchBranch(id: number, body: BranchEdit): Promise<Branch & { env_vars?: Record<string, string> }> {
  let res: Response;
  try {
    res = await fetch(`/api/branches/${id}`, {
      method: "PATCH",
      headers: { "Content-Type": "application/json", ...(auth.token ? { Authorization: `Bearer ${auth.token}` } : {}) },
      body: JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, null);
  }
  const data: unknown = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, data);
  return data as Branch & { env_vars?: Record<string, string> };
}

export const patchProject = (id: number, body: { name?: string; description?: string }) =>
  unwrap<Project>(client.PATCH("/api/projects/{project_id}", { params: { path: { project_id: id } }, body }));

export const setProjectArchived = (id: number, archived: boolean) =>
  unwrap<Project>(
    archived
      ? client.POST("/api/projects/{project_id}/archive", { params: { path: { project_id: id } } })
      : client.POST("/api/projects/{project_id}/unarchive", { params: { path: { project_id: id } } }),
  );

export const deleteProject = (id: number) =>
  unwrap(client.DELETE("/api/projects/{project_id}", { params: { path: { project_id: id } } }));

export const setBranchArchived = (id: number, archived: boolean) =>
  unwrap<Branch>(
    archived
      ? client.POST("/api/branches/{branch_id}/archive", { params: { path: { branch_id: id } } })
      : client.POST("/api/branches/{branch_id}/unarchive", { params: { path: { branch_id: id } } }),
  );

export const deleteBranch = (id: number) => unwrap(client.DELETE("/api/branches/{branch_id}", { params: { path: { branch_id: id } } }));

export const setSequences = (id: number, body: { ci_flow_seq?: number; dev_flow_seq?: number; run_seq?: number }) =>
  unwrap<Branch>(client.PATCH("/api/branches/{branch_id}/sequences", { params: { path: { branch_id: id } }, body }));

export const deleteStage = (id: number) => unwrap(client.DELETE("/api/stages/{stage_id}", { params: { path: { stage_id: id } } }));
