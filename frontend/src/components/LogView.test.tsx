import { describe, expect, it } from "vitest";
import { act, fireEvent, render, screen } from "@testing-library/react";
import { LogView } from "./LogView";
import { LogStore } from "../lib/logStore";

function bigStore(n: number): LogStore {
  const s = new LogStore();
  const chunk: string[] = [];
  for (let i = 0; i < n; i++) {
    chunk.push(i % 1000 === 7 ? `\x1b[31mERROR\x1b[0m in step ${i}` : `line ${i} of the build`);
    if (chunk.length === 5000) {
      s.append(i - 4999, chunk.splice(0));
    }
  }
  s.finish();
  return s;
}

describe("LogView", () => {
  it("renders only a window of a 200 000-line log, with colours and line numbers", async () => {
    const store = bigStore(200_000);
    render(<LogView store={store} running={false} downloadUrl={async () => "/x"} downloadName="x.log" />);
    await act(async () => new Promise((r) => setTimeout(r, 60)));
    const rows = document.querySelectorAll(".log-line");
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.length).toBeLessThan(200);
    expect(screen.getByTestId("log-count").textContent).toContain("200\u202f000 lines");
    expect(document.querySelector(".log-inner")!.getAttribute("style")).toContain(`height: ${200_000 * 18}px`);
    const red = document.querySelector(".a-fg1");
    expect(red?.textContent).toBe("ERROR");
    expect(rows[0].querySelector(".ln")!.textContent).toBe("1");
  });

  it("searches every line, not only the rendered ones", async () => {
    const store = bigStore(200_000);
    render(<LogView store={store} running={false} downloadUrl={async () => "/x"} downloadName="x.log" />);
    const box = screen.getByTestId("log-search");
    const t0 = performance.now();
    fireEvent.change(box, { target: { value: "error in step" } });
    fireEvent.keyDown(box, { key: "Enter" });
    await act(async () => new Promise((r) => setTimeout(r, 20)));
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(screen.getByTestId("log-matches").textContent).toBe("1 / 200");
    fireEvent.keyDown(box, { key: "Enter" });
    expect(screen.getByTestId("log-matches").textContent).toBe("2 / 200");
    expect(document.querySelectorAll(".hl").length).toBeGreaterThanOrEqual(0);
  });

  it("appends streamed lines and says it is waiting before the first", async () => {
    const store = new LogStore();
    render(<LogView store={store} running={true} downloadUrl={async () => "/x"} downloadName="x.log" />);
    expect(screen.getByTestId("log-scroll").textContent).toContain("Waiting for output");
    await act(async () => {
      store.append(0, ["first", "second"]);
      await new Promise((r) => setTimeout(r, 80));
    });
    expect(screen.getByTestId("log-scroll").textContent).toContain("second");
    expect(screen.getByTestId("log-count").textContent).toContain("streaming");
  });
});
