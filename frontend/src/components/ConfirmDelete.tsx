/** A dialog that deletes something only after its name is typed again. */
import { useState } from "react";
import { useMutation } from "@tanstack/react-query";
import { Dialog, FormError } from "./ui";

export function ConfirmDelete({
  open,
  onClose,
  what,
  name,
  consequences,
  action,
  onDone,
}: {
  open: boolean;
  onClose: () => void;
  what: string;
  name: string;
  consequences: string;
  action: () => Promise<unknown>;
  onDone: () => void;
}) {
  const [typed, setTyped] = useState("");
  const m = useMutation({ mutationFn: action, onSuccess: onDone });
  return (
    <Dialog open={open} onClose={onClose} title={`Delete ${what} ${name}`}>
      <form
        className="form"
        onSubmit={(e) => {
          e.preventDefault();
          if (typed === name) m.mutate();
        }}
      >
        <p>
          This deletes the {what} <b>{name}</b> and {consequences}. It cannot be undone.
        </p>
        <label>
          Type <span className="mono">{name}</span> to confirm
          <input name="confirm" value={typed} onChange={(e) => setTyped(e.target.value)} autoFocus autoComplete="off" />
        </label>
        <FormError error={m.error} />
        <div className="form-actions">
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn danger" disabled={typed !== name || m.isPending}>
            {m.isPending ? "Deleting…" : `Delete ${what}`}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
