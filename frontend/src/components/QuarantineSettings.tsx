import { useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { client, unwrap } from "../api/client";
import { qk } from "../lib/queryKeys";
import { FormError, Loading } from "./ui";

type Settings = { quarantine_flaky: boolean; release_after?: number | null };

function SettingsForm({ branchId, initial }: { branchId: number; initial: Settings }) {
  const qc = useQueryClient();
  const [flaky, setFlaky] = useState(initial.quarantine_flaky);
  const [after, setAfter] = useState(initial.release_after == null ? "" : String(initial.release_after));
  const save = useMutation({
    mutationFn: () =>
      unwrap(
        client.PUT("/api/branches/{branch_id}/quarantine-settings", {
          params: { path: { branch_id: branchId } },
          body: { quarantine_flaky: flaky, release_after: after === "" ? null : Number(after) },
        }),
      ),
    onSuccess: (s) => qc.setQueryData(qk.quarantineSettings(branchId), s),
  });
  return (
    <form
      className="form"
      data-testid="quarantine-settings"
      onSubmit={(e) => {
        e.preventDefault();
        save.mutate();
      }}
    >
      <label className="check">
        <input type="checkbox" name="quarantine_flaky" checked={flaky} onChange={(e) => setFlaky(e.target.checked)} /> Quarantine the tests a CI flow finds flaky
      </label>
      <label>
        Release a quarantined test after this many passing CI jobs in a row <span className="muted small">(empty: only by hand)</span>
        <input name="release_after" type="number" min={1} max={1000} value={after} onChange={(e) => setAfter(e.target.value)} />
      </label>
      <FormError error={save.error} />
      <div className="form-actions left">
        <button type="submit" className="btn" disabled={save.isPending}>
          Save
        </button>
        {save.isSuccess && <span className="muted small">saved</span>}
      </div>
    </form>
  );
}

/** A branch's quarantine settings: auto-quarantine of flaky tests and auto-release. */
export function QuarantineSettings({ branchId }: { branchId: number }) {
  const settings = useQuery({
    queryKey: qk.quarantineSettings(branchId),
    queryFn: () => unwrap(client.GET("/api/branches/{branch_id}/quarantine-settings", { params: { path: { branch_id: branchId } } })),
  });
  if (settings.isPending) return <Loading what="Loading the quarantine settings" inline />;
  if (!settings.data) return <FormError error={settings.error} />;
  return <SettingsForm branchId={branchId} initial={settings.data} />;
}
