import { describe, expect, it } from "vitest";
import { sourceBody } from "./StageEditor";

describe("sourceBody", () => {
  const repo = { repo_url: " https://example.org/r.git ", repo_branch: "main", schema_file: "ci/s.star ", repo_access_token: "" };
  it("sends inline code and turns repository mode off", () => {
    expect(sourceBody(false, repo, "code")).toEqual({ schema_from_repo: false, schema_code: "code" });
  });
  it("sends the repository fields, trimmed, and no code", () => {
    expect(sourceBody(true, repo, "code")).toEqual({
      schema_from_repo: true,
      repo_url: "https://example.org/r.git",
      repo_branch: "main",
      schema_file: "ci/s.star",
      repo_access_token: "",
    });
  });
});
