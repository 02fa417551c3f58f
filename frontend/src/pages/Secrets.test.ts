import { describe, expect, it } from "vitest";
import { references, secretBody } from "./Secrets";

const parts = { value: "v", user: "u", key: "k", password: "p" };

describe("secretBody", () => {
  it("sends only the fields of the kind", () => {
    expect(secretBody(" s ", "simple", parts)).toEqual({ name: "s", kind: "simple", value: "v" });
    expect(secretBody("d", "ssh-key", parts)).toEqual({ name: "d", kind: "ssh-key", user: "u", key: "k" });
    expect(secretBody("c", "user-password", parts)).toEqual({ name: "c", kind: "user-password", user: "u", password: "p" });
  });
});

describe("references", () => {
  it("names both syntaxes of a user-password secret's parts", () => {
    expect(references({ name: "c", kind: "user-password" })).toEqual([
      "#{secrets.c.user}",
      "#{secrets.c.password}",
      "#{KK_SECRET_USER_c}",
      "#{KK_SECRET_PASSWORD_c}",
    ]);
    expect(references({ name: "t", kind: "simple" })).toEqual(["#{secrets.t}", "#{KK_SECRET_SIMPLE_t}"]);
  });
});
