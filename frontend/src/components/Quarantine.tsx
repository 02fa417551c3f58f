import { useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { client, unwrap } from "../api/client";
import { qk } from "../lib/queryKeys";
import { plural } from "../lib/format";
import { FormError, Loading, TimeAgo } from "./ui";

/** The branch's quarantined tests (shared by every control of the page: one request). */
export function useQuarantine(branchId: number) {
  return useQuery({
    queryKey: qk.quarantine(branchId),
    queryFn: () => unwrap(client.GET("/api/branches/{branch_id}/quarantine", { params: { path: { branch_id: branchId } } })),
  });
}

/** Quarantine a test on a branch (with a reason) or release it: a quarantined test still runs and
 * its results are recorded, but its failures do not make a run fail. */
export function QuarantineControl({ testCaseId, branchId }: { testCaseId: number; branchId: number }) {
  const qc = useQueryClient();
  const list = useQuarantine(branchId);
  const [reason, setReason] = useState("");
  const done = () => {
    setReason("");
    void qc.invalidateQueries({ queryKey: qk.quarantine(branchId) });
    void qc.invalidateQueries({ queryKey: qk.results() });
  };
  const add = useMutation({
    mutationFn: () =>
      unwrap(
        client.POST("/api/branches/{branch_id}/quarantine", {
          params: { path: { branch_id: branchId } },
          body: { test_case_id: testCaseId, reason },
        }),
      ),
    onSuccess: done,
  });
  const release = useMutation({
    mutationFn: () =>
      unwrap(
        client.DELETE("/api/branches/{branch_id}/quarantine/{test_case_id}", {
          params: { path: { branch_id: branchId, test_case_id: testCaseId } },
        }),
      ),
    onSuccess: done,
  });
  if (list.isPending) return <Loading what="Loading the quarantine" inline />;
  const q = list.data?.find((x) => x.test_case_id === testCaseId);
  return (
    <section className="card" data-testid="quarantine">
      <h3>
        Quarantine {q ? <span className="chip quarantined">quarantined</span> : <span className="muted small">not quarantined on this branch</span>}
      </h3>
      {q ? (
        <>
          <p className="small">
            {q.reason} <span className="muted">· {q.created_by} · <TimeAgo value={q.created} /> · {plural(q.passes, "passing CI job")} since</span>
          </p>
          <p className="muted small">Its failures are counted as quarantined failures and do not make a run fail.</p>
          <button className="btn" onClick={() => release.mutate()} disabled={release.isPending}>
            Release from quarantine
          </button>
        </>
      ) : (
        <form
          className="row"
          onSubmit={(ev) => {
            ev.preventDefault();
            add.mutate();
          }}
        >
          <input aria-label="Reason" placeholder="Why (e.g. the bug's link)" value={reason} onChange={(e) => setReason(e.target.value)} maxLength={1000} />
          <button type="submit" className="btn" disabled={add.isPending || !reason.trim()}>
            Quarantine
          </button>
        </form>
      )}
      <FormError error={add.error ?? release.error} />
    </section>
  );
}
