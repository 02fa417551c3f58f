"""Stage code is Python to its authors: what the original Kraken's RestrictedPython accepted and
starlark refuses is converted here before evaluation.  The conversions by tokens below keep each
line on its line; those found with Python's parser (``kraken.stage.pyast``: ``while``, ``**``,
sets, f-strings, ``try``, ...) may add lines, and ``Converted.line_map`` maps every line of the
result back to the author's, so error line numbers stay right (columns may move on a converted
line).

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
starlark reports the real error; code Python can tokenize but not parse gets the token
conversions only.
"""

from __future__ import annotations

import io
import keyword
import re
import sys
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass, field

from kraken.stage.pyast import Note, syntax_edits

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
    end_row: int = 0  # the row ``end`` is on, when not ``row`` (an edit over several lines)
    from_ast: bool = False  # made by ``pyast`` (which rewrites the parts of what it replaces)


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


def _offsets(lines: list[str]) -> list[int]:
    """The offset in the code of each line's first character (1-based rows: index ``row - 1``)."""
    out, total = [], 0
    for line in lines:
        out.append(total)
        total += len(line)
    out.append(total)
    return out


def _apply(code: str, lines: list[str], edits: list[_Edit]) -> tuple[str, list[int]]:
    """The code with ``edits`` made, and for each of its lines the original line it comes from.

    An edit that lies inside another edit's replaced range is dropped (the outer edit rewrote
    that text itself; an insertion at its edge stays, unless both come from ``pyast``); lines
    an edit adds belong to the line the edit starts on.
    """
    starts = _offsets(lines)
    spans = sorted(
        (
            (starts[e.row - 1] + e.start, starts[(e.end_row or e.row) - 1] + e.end, e.order, e.text, e.from_ast)
            for e in edits
        ),
        key=lambda s: (s[0], -s[1], s[2]),
    )
    kept: list[tuple[int, int, int, str, bool]] = []
    o_start, o_end, o_ast = -1, -1, False  # the replacement reaching furthest so far
    for span in spans:
        start, end, _, _, from_ast = span
        covered = (
            o_start <= start
            and end <= o_end
            and (start, end) != (o_start, o_end)
            and not (start == end and start in (o_start, o_end) and not (from_ast and o_ast))
        )
        if not covered:
            kept.append(span)
        if end > start and end > o_end:
            o_start, o_end, o_ast = start, end, from_ast
    kept.sort(key=lambda s: (s[0], s[1], s[2]))
    out: list[str] = []
    line_map = [1]
    pos, row = 0, 1
    for start, end, _, text, _ in kept:
        start = max(start, pos)  # (overlaps cannot happen with the conversions here; be safe)
        segment = code[pos:start]
        for _ in range(segment.count("\n")):
            row += 1
            line_map.append(row)
        out.append(segment)
        out.append(text)
        line_map.extend([row] * text.count("\n"))
        row += code.count("\n", start, end)
        pos = max(end, start)
    rest = code[pos:]
    for _ in range(rest.count("\n")):
        row += 1
        line_map.append(row)
    out.append(rest)
    return "".join(out), line_map


@dataclass(frozen=True)
class Converted:
    """Converted code; ``line_map[i]`` is the original line of its line ``i + 1``; ``notes``
    are said with an error on the lines they cover (``pyast.Note``)."""

    code: str
    line_map: list[int]
    notes: list[Note] = field(default_factory=list)

    def original_line(self, line: int) -> int:
        return self.line_map[line - 1] if 0 < line <= len(self.line_map) else line


def convert(code: str) -> Converted:
    """``code`` with the Python-isms above converted (``StageSchemaError`` for a construct that
    cannot be converted, at its line)."""
    lines = code.splitlines(keepends=True)
    tokens = _tokens(code)
    if tokens is None:
        out = "".join(_expand_indent(line).replace("\t", " ") if "\t" in line else line for line in lines)
        return Converted(out, list(range(1, out.count("\n") + 2)))
    edits = _tab_edits(lines, tokens) + _is_edits(tokens) + _concat_edits(tokens) + _ctx_edits(tokens)
    edits += _chain_edits(tokens)
    found = syntax_edits(code, lines, tokens, _expression)
    if found is None:  # Python cannot parse it: starlark reports the error
        out, line_map = _apply(code, lines, edits)
        return Converted(out, line_map)
    more, notes = found
    out, line_map = _apply(code, lines, edits + [_Edit(*e, from_ast=True) for e in more])
    return Converted(out, line_map, notes)


# what may need a conversion in one expression (``ast.unparse``'s text): else it stays as it is
_MAY_CONVERT = re.compile(
    r"\bis\b|\bctx\b|\*\*|[{}]|\bset\b|\bfrozenset\b|\bfor\b|[<>=!]=?.*[<>=!]=?|\bin\b|sort|[bf]['\"]"
)


def _expression(text: str) -> str:
    """One expression (Python source on one line, from ``ast.unparse``) converted."""
    return convert(text).code if _MAY_CONVERT.search(text) else text


def to_starlark(code: str) -> str:
    """``code`` with the Python-isms above converted; line numbers kept (``convert`` maps them)."""
    return convert(code).code
