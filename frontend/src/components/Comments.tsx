import { useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { client, unwrap } from "../api/client";
import { FormError, Loading, TimeAgo } from "./ui";
import { qk } from "../lib/queryKeys";

const STATES = ["new", "investigating", "bug-in-product", "bug-in-test"] as const;
type State = (typeof STATES)[number];

/** The test's comment on a branch: its state and thread; a root cause lowers its failures' relevancy. */
export function Comments({ testCaseId, branchId }: { testCaseId: number; branchId: number }) {
  const key = qk.comments(testCaseId, branchId);
  const qc = useQueryClient();
  const comment = useQuery({
    queryKey: key,
    queryFn: () =>
      unwrap(client.GET("/api/test-cases/{test_case_id}/comments", { params: { path: { test_case_id: testCaseId }, query: { branch_id: branchId } } })),
  });
  const [text, setText] = useState("");
  const [state, setState] = useState<State | "">("");
  const add = useMutation({
    mutationFn: () =>
      unwrap(
        client.POST("/api/test-cases/{test_case_id}/comments", {
          params: { path: { test_case_id: testCaseId } },
          body: { branch_id: branchId, text, state: state || null },
        }),
      ),
    onSuccess: (c) => {
      qc.setQueryData(key, c);
      setText("");
      setState("");
    },
  });
  if (comment.isPending) return <Loading what="Loading the comment" inline />;
  const c = comment.data;
  return (
    <section className="card" data-testid="comments">
      <h3>
        Comment {c?.state ? <span className={`chip comment-${c.state}`}>{c.state}</span> : <span className="muted small">none yet</span>}
      </h3>
      {c?.entries.map((e) => (
        <div key={e.id} className="comment-entry">
          <div className="small muted">
            {e.author} · <TimeAgo value={e.created} /> · {e.state}
          </div>
          <pre className="comment-text">{e.text}</pre>
        </div>
      ))}
      <form
        className="comment-form"
        onSubmit={(ev) => {
          ev.preventDefault();
          add.mutate();
        }}
      >
        <textarea aria-label="Comment" placeholder="What is known about this test's failures (Markdown)" value={text} onChange={(e) => setText(e.target.value)} rows={3} />
        <div className="row">
          <select aria-label="State" value={state} onChange={(e) => setState(e.target.value as State | "")}>
            <option value="">keep the state</option>
            {STATES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
          <button type="submit" className="btn primary" disabled={add.isPending || (!text.trim() && !state)}>
            Add
          </button>
        </div>
        <FormError error={add.error} />
      </form>
    </section>
  );
}
