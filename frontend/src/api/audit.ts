/** The audit log (kraken/api/routes/audit.py). */
import { client, unwrap } from "./client";
import type { components } from "./schema";

export type AuditEntry = components["schemas"]["AuditEntryOut"];
export type AuditPage = components["schemas"]["AuditPage"];
export type AuditFilter = { user?: string; action?: string; project?: number };

export const listAudit = (filter: AuditFilter, before?: number) =>
  unwrap<AuditPage>(
    client.GET("/api/audit", {
      params: {
        query: {
          user: filter.user || undefined,
          action: filter.action || undefined,
          project: filter.project || undefined,
          before,
          limit: 50,
        },
      },
    }),
  );
