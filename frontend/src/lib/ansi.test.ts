import { describe, expect, it } from "vitest";
import { parseAnsi, stripAnsi } from "./ansi";

describe("ansi", () => {
  it("keeps plain lines whole", () => {
    expect(parseAnsi("hello world")).toEqual([{ text: "hello world" }]);
  });
  it("parses the 16 colours, bold and reset", () => {
    expect(parseAnsi("\x1b[31mFAILED\x1b[0m ok \x1b[1;92mPASSED\x1b[m")).toEqual([
      { text: "FAILED", cls: "a-fg1" },
      { text: " ok " },
      { text: "PASSED", cls: "a-fg10 a-b" },
    ]);
  });
  it("parses 256 and true colours as inline styles", () => {
    expect(parseAnsi("\x1b[38;5;196mred\x1b[48;2;1;2;3mbg")).toEqual([
      { text: "red", style: { color: "rgb(255,0,0)" } },
      { text: "bg", style: { color: "rgb(255,0,0)", backgroundColor: "rgb(1,2,3)" } },
    ]);
    expect(parseAnsi("\x1b[38;5;3mx")).toEqual([{ text: "x", cls: "a-fg3" }]);
  });
  it("drops other sequences and keeps what follows a carriage return", () => {
    expect(parseAnsi("\x1b[2K\x1b[1Gdone")).toEqual([{ text: "done" }]);
    expect(parseAnsi("\x1b]0;title\x07text")).toEqual([{ text: "text" }]);
    expect(parseAnsi(" 10%\r 50%\r100%")).toEqual([{ text: "100%" }]);
    expect(parseAnsi("line\r")).toEqual([{ text: "line" }]);
  });
  it("inverts", () => {
    expect(parseAnsi("\x1b[7;31mx")).toEqual([{ text: "x", cls: "a-bg1" }]);
  });
  it("strips", () => {
    expect(stripAnsi("\x1b[31mred\x1b[0m and \x1b[1mbold")).toBe("red and bold");
  });
});
