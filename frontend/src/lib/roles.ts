/** The caller's role in a project (from GET /api/auth/me), so that pages offer only what it allows;
 * the server checks every call anyway (kraken/api/authz.py). */
import { useMe } from "../api/queries";

export type Role = "viewer" | "member" | "maintainer";
const ORDER: Role[] = ["viewer", "member", "maintainer"];

/** Whether ``role`` includes ``needed``. */
export function allows(role: Role | null | undefined, needed: Role): boolean {
  return !!role && ORDER.indexOf(role) >= ORDER.indexOf(needed);
}

/** The role in the project: administrators are maintainers everywhere; null while unknown. */
export function useRole(projectId: number | null | undefined): Role | null {
  const me = useMe();
  if (!me.data || projectId == null) return null;
  if (me.data.is_admin) return "maintainer";
  const role = (me.data.roles ?? {})[String(projectId)];
  return (role as Role | undefined) ?? null;
}
