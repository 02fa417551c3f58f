import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { createUser, listUsers, patchUser, type UserRow } from "../api/users";
import { useMe } from "../api/queries";
import { PageHeader } from "../components/Layout";
import { ErrorBox, FormError, Loading, TimeAgo, useTitle } from "../components/ui";
import { qk } from "../lib/queryKeys";

function NewUser() {
  const qc = useQueryClient();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [isAdmin, setIsAdmin] = useState(false);
  const m = useMutation({
    mutationFn: () => createUser({ username, password, is_admin: isAdmin }),
    onSuccess: () => {
      setUsername("");
      setPassword("");
      setIsAdmin(false);
      qc.invalidateQueries({ queryKey: qk.users() });
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    m.mutate();
  };
  return (
    <form className="form-row" onSubmit={submit} data-testid="new-user">
      <input name="username" placeholder="user name" value={username} onChange={(e) => setUsername(e.target.value)} required />
      <input name="password" type="password" placeholder="password (8+ characters)" value={password} onChange={(e) => setPassword(e.target.value)} required />
      <label>
        <input type="checkbox" checked={isAdmin} onChange={(e) => setIsAdmin(e.target.checked)} /> administrator
      </label>
      <button className="btn primary" type="submit" disabled={m.isPending}>
        Add user
      </button>
      <FormError error={m.error} />
    </form>
  );
}

function UserLine({ user, self }: { user: UserRow; self: boolean }) {
  const qc = useQueryClient();
  const m = useMutation({
    mutationFn: (body: { disabled?: boolean; is_admin?: boolean }) => patchUser(user.id, body),
    onSuccess: () => qc.invalidateQueries({ queryKey: qk.users() }),
  });
  return (
    <tr data-testid={`user-${user.username}`}>
      <td>
        {user.username} {self && <span className="muted small">(you)</span>}
      </td>
      <td>{user.is_admin ? "administrator" : "user"}</td>
      <td>{user.provider === "local" ? "password" : user.provider.toUpperCase()}</td>
      <td>{user.disabled ? "disabled" : "active"}</td>
      <td>
        <TimeAgo value={user.created} />
      </td>
      <td>
        {!self && (
          <>
            <button className="btn small" onClick={() => m.mutate({ disabled: !user.disabled })} disabled={m.isPending}>
              {user.disabled ? "Enable" : "Disable"}
            </button>{" "}
            <button className="btn small" onClick={() => m.mutate({ is_admin: !user.is_admin })} disabled={m.isPending}>
              {user.is_admin ? "Remove administrator" : "Make administrator"}
            </button>
          </>
        )}
        <FormError error={m.error} />
      </td>
    </tr>
  );
}

/** Administrators: the users, adding one, disabling (ends their sessions at once), the administrator flag. */
export default function UsersPage() {
  useTitle("Users");
  const me = useMe();
  const users = useQuery({ queryKey: qk.users(), queryFn: listUsers, enabled: !!me.data?.is_admin });
  if (me.data && !me.data.is_admin) return <ErrorBox error={new Error("Only administrators manage users.")} />;
  return (
    <>
      <PageHeader title="Users" />
      <section className="card">
        <NewUser />
        {users.isPending ? (
          <Loading inline />
        ) : users.isError ? (
          <ErrorBox error={users.error} />
        ) : (
          <table className="table" data-testid="users">
            <thead>
              <tr>
                <th>User</th>
                <th>Role</th>
                <th>Login</th>
                <th>State</th>
                <th>Created</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {users.data.map((u) => (
                <UserLine key={u.id} user={u} self={u.id === me.data?.id} />
              ))}
            </tbody>
          </table>
        )}
        <p className="muted small">A user's role in each project is set on the project's Members page.</p>
      </section>
    </>
  );
}
