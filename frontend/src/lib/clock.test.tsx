import { describe, expect, it } from "vitest";
import { act, render } from "@testing-library/react";
import { TimeAgo } from "../components/ui";

describe("useNow", () => {
  it("lets many relative times render together without update loops", async () => {
    const now = new Date().toISOString();
    const { container } = render(
      <div>
        {Array.from({ length: 200 }, (_, i) => (
          <TimeAgo key={i} value={now} />
        ))}
      </div>,
    );
    await act(async () => new Promise((r) => setTimeout(r, 20)));
    expect(container.querySelectorAll("time")).toHaveLength(200);
    expect(container.textContent).toContain("just now");
  });
});
