import { useEffect, useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { listMembers, listUsers, setMembers, type Member } from "../api/users";
import { useMe, useProjects } from "../api/queries";
import { PageHeader } from "../components/Layout";
import { ErrorBox, FormError, Loading, useTitle } from "../components/ui";
import { qk } from "../lib/queryKeys";
import { allows, useRole, type Role } from "../lib/roles";

const ROLES: Role[] = ["viewer", "member", "maintainer"];

/** A project's members; maintainers edit them, everyone else reads them. */
export default function MembersPage({ projectId }: { projectId: number }) {
  useTitle("Members");
  const qc = useQueryClient();
  const me = useMe();
  const role = useRole(projectId);
  const canEdit = allows(role, "maintainer");
  const projects = useProjects(true);
  const project = projects.data?.find((p) => p.id === projectId);
  const members = useQuery({ queryKey: qk.members(projectId), queryFn: () => listMembers(projectId) });
  // only administrators can list every user; a maintainer adds a user by id
  const users = useQuery({ queryKey: qk.users(), queryFn: listUsers, enabled: canEdit && !!me.data?.is_admin });
  const [rows, setRows] = useState<Member[]>([]);
  const [newUser, setNewUser] = useState("");
  useEffect(() => {
    if (members.data) setRows(members.data);
  }, [members.data]);
  const save = useMutation({
    mutationFn: () => setMembers(projectId, rows.map((r) => ({ user_id: r.user_id, role: r.role }))),
    onSuccess: (data) => qc.setQueryData(qk.members(projectId), data),
  });
  if (members.isPending) return <Loading />;
  if (members.isError) return <ErrorBox error={members.error} />;
  const add = () => {
    const id = Number(newUser);
    if (!id || rows.some((r) => r.user_id === id)) return;
    const name = users.data?.find((u) => u.id === id)?.username ?? `user ${id}`;
    setRows([...rows, { user_id: id, username: name, role: "viewer" }]);
    setNewUser("");
  };
  return (
    <>
      <PageHeader crumbs={[{ label: "Projects", href: "/" }, { label: project?.name ?? "…" }]} title="Members" />
      <section className="card">
        <p className="muted small">
          Viewers read everything of the project; members also run, cancel and rerun flows and comment on tests; maintainers also edit stages, branches,
          secrets, the webhook and the members. {project?.public ? "This project is public: every logged-in user is at least a viewer." : ""}
        </p>
        <table className="table" data-testid="members">
          <thead>
            <tr>
              <th>User</th>
              <th>Role</th>
              {canEdit && <th />}
            </tr>
          </thead>
          <tbody>
            {rows.map((r, i) => (
              <tr key={r.user_id} data-testid={`member-${r.username}`}>
                <td>{r.username}</td>
                <td>
                  {canEdit ? (
                    <select
                      aria-label={`role of ${r.username}`}
                      value={r.role}
                      onChange={(e) => setRows(rows.map((x, j) => (j === i ? { ...x, role: e.target.value as Role } : x)))}
                    >
                      {ROLES.map((x) => (
                        <option key={x}>{x}</option>
                      ))}
                    </select>
                  ) : (
                    r.role
                  )}
                </td>
                {canEdit && (
                  <td>
                    <button className="btn small" onClick={() => setRows(rows.filter((_, j) => j !== i))}>
                      Remove
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
        {canEdit && (
          <div className="form-row">
            {users.data ? (
              <select aria-label="user to add" value={newUser} onChange={(e) => setNewUser(e.target.value)}>
                <option value="">add a user…</option>
                {users.data
                  .filter((u) => !rows.some((r) => r.user_id === u.id))
                  .map((u) => (
                    <option key={u.id} value={u.id}>
                      {u.username}
                    </option>
                  ))}
              </select>
            ) : (
              <input aria-label="user id to add" placeholder="user id" value={newUser} onChange={(e) => setNewUser(e.target.value)} />
            )}
            <button className="btn" onClick={add}>
              Add
            </button>
            <button className="btn primary" onClick={() => save.mutate()} disabled={save.isPending}>
              Save members
            </button>
            <FormError error={save.error} />
          </div>
        )}
      </section>
    </>
  );
}
