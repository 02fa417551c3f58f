"""Stage code is Python to its authors: what the original Kraken's RestrictedPython accepted and
starlark refuses is converted here before evaluation.  Every conversion keeps each line on its
line, so error line numbers stay right (columns may move on a converted line).

- tabs outside string literals: in indentation they expand to the next multiple of 8 columns,
  as Python reads them; elsewhere (between tokens, in comments) they become a space;
- ``a is None`` / ``a is not None`` → ``a == None`` / ``a != None`` (starlark has no ``is``;
  for the values stage code handles, equality is what ``is`` meant);
- adjacent string literals (``"a" "b"``, also across lines) → ``("a" + "b")``;
- chained assignment to names ``a = b = expr`` → ``b = expr; a = b``;
- ``ctx.args.NAME`` and ``ctx.env.NAME`` → ``ctx.args.get("NAME")``: the original's context
  gave attribute access to arguments and variables, and an argument not known yet (the first
  evaluation, before the parameters are read) is ``None`` instead of an error.

Code Python cannot tokenize is left to starlark, with its tabs converted line by line, so that
starlark reports the real error.
"""

from __future__ import annotations

import io
import keyword
import sys
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass

TAB_SIZE = 8
_DICT_FIELDS = ("args", "env")
_DICT_METHODS = frozenset({"get", "keys", "values", "items"})
_STRING_TYPES = {tokenize.STRING}
for _name in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END"):
    if hasattr(tokenize, _name):
        _STRING_TYPES.add(getattr(tokenize, _name))


@dataclass(frozen=True)
class _Edit:
    row: int  # 1-based
    start: int
    end: int
    text: str
    order: int = 0  # among insertions at one column, a higher order ends up further right


def _indent_width(indent: str) -> int:
    """The column Python's tokenizer gives the leading whitespace ``indent``."""
    column = 0
    for char in indent:
        column = (column // TAB_SIZE + 1) * TAB_SIZE if char == "\t" else column + 1
    return column


def _expand_indent(line: str) -> str:
    """``line`` with the tabs of its leading whitespace expanded as Python reads them."""
    stripped = line.lstrip(" \t\f")
    indent = line[: len(line) - len(stripped)]
    return " " * _indent_width(indent) + stripped if "\t" in indent else line


def _tokens(code: str) -> list[tokenize.TokenInfo] | None:
    try:
        return list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, SyntaxError):
        return None


def _protected(tokens: list[tokenize.TokenInfo]) -> dict[int, list[tuple[int, int]]]:
    """Per row, the column ranges ``[start, end)`` inside string literals (a row fully inside a
    multi-line string: ``(0, sys.maxsize)``)."""
    rows: dict[int, list[tuple[int, int]]] = {}
    for tok in tokens:
        if tok.type not in _STRING_TYPES:
            continue
        (row1, col1), (row2, col2) = tok.start, tok.end
        if row1 == row2:
            rows.setdefault(row1, []).append((col1, col2))
            continue
        rows.setdefault(row1, []).append((col1, sys.maxsize))
        for row in range(row1 + 1, row2):
            rows.setdefault(row, []).append((0, sys.maxsize))
        rows.setdefault(row2, []).append((0, col2))
    return rows


def _tab_edits(lines: list[str], tokens: list[tokenize.TokenInfo]) -> list[_Edit]:
    protected = _protected(tokens)
    edits: list[_Edit] = []
    for row, line in enumerate(lines, 1):
        if "\t" not in line:
            continue
        ranges = protected.get(row, [])

        def inside(col: int, ranges: list[tuple[int, int]] = ranges) -> bool:
            return any(start <= col < end for start, end in ranges)

        stripped = line.lstrip(" \t\f")
        indent_len = len(line) - len(stripped)
        if "\t" in line[:indent_len] and not inside(0):
            edits.append(_Edit(row, 0, indent_len, " " * _indent_width(line[:indent_len])))
        for col in range(indent_len, len(line)):
            if line[col] == "\t" and not inside(col):
                edits.append(_Edit(row, col, col + 1, " "))
    return edits


def _is_edits(tokens: list[tokenize.TokenInfo]) -> list[_Edit]:
    edits: list[_Edit] = []
    for i, tok in enumerate(tokens):
        if tok.type != tokenize.NAME or tok.string != "is":
            continue
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if nxt is not None and nxt.type == tokenize.NAME and nxt.string == "not" and nxt.start[0] == tok.start[0]:
            edits.append(_Edit(tok.start[0], tok.start[1], nxt.end[1], "!="))
        else:
            edits.append(_Edit(tok.start[0], tok.start[1], tok.end[1], "=="))
    return edits


def _concat_edits(tokens: list[tokenize.TokenInfo]) -> list[_Edit]:
    """Runs of adjacent string literals joined with ``+``, in parentheses (they bind tightest)."""
    skip = {tokenize.NL, tokenize.COMMENT}
    edits: list[_Edit] = []
    run: list[tokenize.TokenInfo] = []
    for tok in [*tokens, None]:
        if tok is not None and tok.type in skip:
            continue
        if tok is not None and tok.type == tokenize.STRING:
            run.append(tok)
            continue
        if len(run) > 1:
            first, last = run[0], run[-1]
            edits.append(_Edit(first.start[0], first.start[1], first.start[1], "("))
            edits.extend(_Edit(t.end[0], t.end[1], t.end[1], " +") for t in run[:-1])
            edits.append(_Edit(last.end[0], last.end[1], last.end[1], ")"))
        run = []
    return edits


def _logical_lines(tokens: list[tokenize.TokenInfo]) -> Iterator[list[tokenize.TokenInfo]]:
    skip = {tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING}
    line: list[tokenize.TokenInfo] = []
    for tok in tokens:
        if tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
            if line:
                yield line
            line = []
        elif tok.type not in skip:
            line.append(tok)


def _chain_edits(tokens: list[tokenize.TokenInfo]) -> list[_Edit]:
    """``a = b = expr`` (names only) → ``b = expr; a = b`` on the same lines."""
    edits: list[_Edit] = []
    for line in _logical_lines(tokens):
        depth, equals = 0, []
        for i, tok in enumerate(line):
            if tok.string in ("(", "[", "{"):
                depth += 1
            elif tok.string in (")", "]", "}"):
                depth -= 1
            elif tok.string == "=" and depth == 0:
                equals.append(i)
        if len(equals) < 2 or equals[0] != 1:
            continue
        targets = [line[i - 1] for i in equals]
        simple = all(
            t.type == tokenize.NAME and not keyword.iskeyword(t.string) and t.start[0] == line[0].start[0]
            for t in targets
        )
        if not simple or any(equals[k + 1] != equals[k] + 2 for k in range(len(equals) - 1)):
            continue
        last = targets[-1]
        edits.append(_Edit(line[0].start[0], line[0].start[1], last.start[1], ""))
        end = line[-1].end
        rest = "".join(f"; {t.string} = {last.string}" for t in targets[:-1])
        edits.append(_Edit(end[0], end[1], end[1], rest, order=1))
    return edits


def _ctx_edits(tokens: list[tokenize.TokenInfo]) -> list[_Edit]:
    """``ctx.args.NAME`` (not a call, not a dict method) → ``ctx.args.get("NAME")``."""
    edits: list[_Edit] = []
    for i in range(len(tokens) - 4):
        ctx, dot1, field, dot2, name = tokens[i : i + 5]
        if not (
            ctx.type == tokenize.NAME
            and ctx.string == "ctx"
            and dot1.string == "."
            and field.string in _DICT_FIELDS
            and dot2.string == "."
            and name.type == tokenize.NAME
            and not keyword.iskeyword(name.string)
        ):
            continue
        if i > 0 and tokens[i - 1].string == ".":
            continue  # something.ctx.args...
        after = tokens[i + 5] if i + 5 < len(tokens) else None
        if name.string in _DICT_METHODS and after is not None and after.string == "(":
            continue
        if name.start[0] != dot2.start[0]:
            continue
        edits.append(_Edit(dot2.start[0], dot2.start[1], name.end[1], f'.get("{name.string}")'))
    return edits


def _apply(lines: list[str], edits: list[_Edit]) -> list[str]:
    out = list(lines)
    # right to left; at one column a replacement goes before an insertion
    for edit in sorted(edits, key=lambda e: (e.row, e.start, e.end, e.order), reverse=True):
        line = out[edit.row - 1]
        out[edit.row - 1] = line[: edit.start] + edit.text + line[edit.end :]
    return out


def to_starlark(code: str) -> str:
    """``code`` with the Python-isms above converted; the same number of lines."""
    lines = code.splitlines(keepends=True)
    tokens = _tokens(code)
    if tokens is None:
        return "".join(_expand_indent(line).replace("\t", " ") if "\t" in line else line for line in lines)
    edits = _tab_edits(lines, tokens) + _is_edits(tokens) + _concat_edits(tokens) + _ctx_edits(tokens)
    edits += _chain_edits(tokens)
    return "".join(_apply(lines, edits))
