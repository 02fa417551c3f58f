/** CodeMirror 6 with Python highlighting and diagnostics at given lines (loaded with the stage editor only). */
import { forwardRef, useEffect, useImperativeHandle, useRef } from "react";
import { basicSetup } from "codemirror";
import { python } from "@codemirror/lang-python";
import { HighlightStyle, syntaxHighlighting, indentUnit } from "@codemirror/language";
import { lintGutter, setDiagnostics, type Diagnostic } from "@codemirror/lint";
import { EditorState } from "@codemirror/state";
import { EditorView, keymap } from "@codemirror/view";
import { indentWithTab } from "@codemirror/commands";
import { tags as t } from "@lezer/highlight";

export interface EditorProblem {
  line: number; // 1-based
  column?: number | null; // 1-based
  message: string;
}

export interface CodeEditorHandle {
  show(problem: EditorProblem | null): void;
  focus(): void;
}

const theme = EditorView.theme({
  "&": { backgroundColor: "var(--code-bg)", color: "var(--fg)", fontSize: "13px", border: "1px solid var(--border)", borderRadius: "6px" },
  "&.cm-focused": { outline: "2px solid var(--accent-soft)" },
  ".cm-content": { fontFamily: "var(--mono)", caretColor: "var(--fg)" },
  ".cm-gutters": { backgroundColor: "var(--code-bg)", color: "var(--muted)", borderRight: "1px solid var(--border)" },
  ".cm-activeLine": { backgroundColor: "var(--row-hover)" },
  ".cm-activeLineGutter": { backgroundColor: "var(--row-hover)" },
  ".cm-selectionBackground, &.cm-focused .cm-selectionBackground, ::selection": { backgroundColor: "var(--selection) !important" },
  ".cm-cursor": { borderLeftColor: "var(--fg)" },
  ".cm-tooltip": { backgroundColor: "var(--panel)", color: "var(--fg)", border: "1px solid var(--border)" },
  ".cm-scroller": { minHeight: "420px" },
});

const highlight = HighlightStyle.define([
  { tag: [t.keyword, t.controlKeyword, t.definitionKeyword], color: "var(--syn-keyword)" },
  { tag: [t.string, t.special(t.string)], color: "var(--syn-string)" },
  { tag: [t.number, t.bool, t.null], color: "var(--syn-number)" },
  { tag: [t.comment, t.lineComment], color: "var(--syn-comment)", fontStyle: "italic" },
  { tag: [t.function(t.variableName), t.function(t.definition(t.variableName))], color: "var(--syn-function)" },
  { tag: [t.propertyName, t.attributeName], color: "var(--syn-property)" },
  { tag: [t.operator, t.punctuation, t.bracket], color: "var(--muted)" },
]);

export const CodeEditor = forwardRef<CodeEditorHandle, { value: string; onChange: (v: string) => void; onSave?: () => void }>(function CodeEditor({ value, onChange, onSave }, ref) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const cb = useRef({ onChange, onSave });
  cb.current = { onChange, onSave };

  useEffect(() => {
    const v = new EditorView({
      parent: host.current!,
      state: EditorState.create({
        doc: value,
        extensions: [
          basicSetup,
          python(),
          indentUnit.of("    "),
          syntaxHighlighting(highlight),
          lintGutter(),
          theme,
          keymap.of([
            indentWithTab,
            {
              key: "Mod-s",
              preventDefault: true,
              run: () => {
                cb.current.onSave?.();
                return true;
              },
            },
          ]),
          EditorView.updateListener.of((u) => {
            if (u.docChanged) {
              cb.current.onChange(u.state.doc.toString());
              u.view.dispatch(setDiagnostics(u.state, []));
            }
          }),
        ],
      }),
    });
    view.current = v;
    return () => v.destroy();
    // the editor owns the text once created
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  // text replaced from outside (loaded stage)
  useEffect(() => {
    const v = view.current;
    if (v && v.state.doc.toString() !== value) v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: value } });
  }, [value]);

  useImperativeHandle(ref, () => ({
    show(problem) {
      const v = view.current;
      if (!v) return;
      if (!problem) {
        v.dispatch(setDiagnostics(v.state, []));
        return;
      }
      const line = v.state.doc.line(Math.min(Math.max(1, problem.line), v.state.doc.lines));
      const from = Math.min(line.to, line.from + Math.max(0, (problem.column ?? 1) - 1));
      const d: Diagnostic = { from: problem.column ? from : line.from, to: line.to, severity: "error", message: problem.message };
      v.dispatch(setDiagnostics(v.state, [d]));
      v.dispatch({ selection: { anchor: from }, effects: EditorView.scrollIntoView(from, { y: "center" }) });
    },
    focus() {
      view.current?.focus();
    },
  }));

  return <div ref={host} className="code-editor" data-testid="code-editor" />;
});
