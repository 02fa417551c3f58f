"""The Python statements and expressions starlark lacks, found with Python's own parser (``ast``)
and rewritten by their source positions (``kraken.stage.pycompat`` applies the edits and maps
line numbers back to the author's lines).

Converted or emulated:

- ``while cond:`` → a bounded ``for`` loop that breaks when ``cond`` is false; more than
  ``WHILE_LIMIT`` rounds end the evaluation with an error at the ``while`` line;
- ``a ** b`` → ``_kraken_pow(a, b)`` (whole-number exponents), ``x **= y`` likewise;
- set literals and comprehensions ``{a, b}``, ``set(...)``, ``frozenset(...)`` → a list
  without duplicates (``_kraken_set``: membership, iteration and ``len`` work as on a set);
- f-strings whose fields are more than a name (``f"{a.b}"``, ``f"{n + 1}"``, ``f"{x!r}"``)
  → ``"...{}...".format(...)``; a format spec (``f"{n:03d}"``) is refused;
- generator expressions → list comprehensions; chained comparisons ``a < b < c`` of names,
  attributes and constants → ``(a < b and b < c)``;
- ``lst.sort(...)`` as a statement → sorted in place (``_kraken_sort``);
- ``try:`` runs its body, ``else:`` and ``finally:`` run after it; ``except`` handlers never
  run: starlark has no exceptions, so an error inside ``try:`` ends the evaluation, and its
  message then says so (a ``Note``);
- ``raise E(msg)`` → ``fail(msg)``; ``assert c, msg`` → ``if not (c): fail(msg)``;
  ``del d[k]`` → ``d.pop(k)``.

What cannot run (``class``, ``import``, ``with``, ``global``, ``yield``, ``:=``, ...) raises
``StageSchemaError`` naming the construct, at its line.  Code Python cannot parse is left to
starlark, which reports the error.
"""

from __future__ import annotations

import ast
import bisect
import itertools
import tokenize
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from kraken.stage.errors import StageSchemaError

WHILE_LIMIT = 1_000_000
# (row, start, end, text, order, end_row) as ``pycompat._Edit`` takes them
Edit = tuple[int, int, int, str, int, int]
Convert = Callable[[str], str]

_REFUSED: dict[type[ast.AST], tuple[str, str]] = {
    ast.ClassDef: ("'class'", "use functions and dicts"),
    ast.Import: ("'import'", "stage code cannot import modules"),
    ast.ImportFrom: ("'import'", "stage code cannot import modules"),
    ast.With: ("'with'", "stage code cannot open files or resources"),
    ast.AsyncWith: ("'async with'", ""),
    ast.AsyncFor: ("'async for'", ""),
    ast.AsyncFunctionDef: ("'async def'", ""),
    ast.Await: ("'await'", ""),
    ast.Global: ("'global'", "return values from functions instead"),
    ast.Nonlocal: ("'nonlocal'", "return values from functions instead"),
    ast.Yield: ("'yield'", "build and return a list instead"),
    ast.YieldFrom: ("'yield from'", "build and return a list instead"),
    ast.NamedExpr: ("':=' (assignment expression)", "assign on a line of its own"),
    ast.Match: ("'match'", "use if/elif"),
    ast.TryStar: ("'except*'", ""),
}
_COMPARE_OPS: dict[type[ast.cmpop], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "==",
    ast.IsNot: "!=",
}


@dataclass(frozen=True)
class Note:
    """Said with an error whose line is in ``first``..``last``."""

    first: int
    last: int
    text: str


def _refuse(node: ast.AST, what: str, hint: str = "") -> StageSchemaError:
    line = getattr(node, "lineno", None)
    message = f"{what} is not available in stage code (it runs as Starlark, a dialect of Python)"
    return StageSchemaError(message + (f"; {hint}" if hint else ""), line=line)


class _Finder:
    def __init__(self, code: str, lines: list[str], tokens: list[tokenize.TokenInfo], expr: Convert) -> None:
        self.code, self.lines, self.tokens, self._expr = code, lines, tokens, expr
        self.token_starts = [tok.start for tok in tokens]
        self.edits: list[Edit] = []
        self.notes: list[Note] = []
        self.names_bound: set[str] = set()
        self.call_parens: set[tuple[int, int]] = set()  # where a call's "(" is (its sole argument's start on 3.11)

    # ------------------------------------------------------------ positions

    def col(self, row: int, byte_col: int) -> int:
        """``ast`` counts UTF-8 bytes; the edits count characters."""
        line = self.lines[row - 1] if row - 1 < len(self.lines) else ""
        return len(line.encode()[:byte_col].decode(errors="ignore"))

    def start(self, node: ast.AST) -> tuple[int, int]:
        return node.lineno, self.col(node.lineno, node.col_offset)  # type: ignore[attr-defined]

    def end(self, node: ast.AST) -> tuple[int, int]:
        row = node.end_lineno  # type: ignore[attr-defined]
        return row, self.col(row, node.end_col_offset)  # type: ignore[attr-defined]

    def tokens_from(self, pos: tuple[int, int]) -> Iterator[tokenize.TokenInfo]:
        return itertools.islice(self.tokens, bisect.bisect_left(self.token_starts, pos), None)

    def token_after(self, pos: tuple[int, int], string: str) -> tokenize.TokenInfo:
        for tok in self.tokens_from(pos):
            if tok.type == tokenize.OP and tok.string == string:
                return tok
        raise StageSchemaError(f"cannot find '{string}' after line {pos[0]}", line=pos[0])

    def name_between(self, first: tuple[int, int], last: tuple[int, int], name: str) -> tokenize.TokenInfo | None:
        for tok in self.tokens_from(first):
            if tok.start >= last:
                break
            if tok.type == tokenize.NAME and tok.string == name:
                return tok
        return None

    def indent(self, row: int) -> int:
        """The width (in columns, tabs expanded) of a line's leading whitespace."""
        line = self.lines[row - 1]
        column = 0
        for char in line[: len(line) - len(line.lstrip(" \t\f"))]:
            column = (column // 8 + 1) * 8 if char == "\t" else column + 1
        return column

    def replace(self, first: tuple[int, int], last: tuple[int, int], text: str, order: int = 0) -> None:
        self.edits.append((first[0], first[1], last[1], text, order, last[0]))

    def expr(self, node: ast.AST) -> str:
        """The expression, converted, on one line."""
        try:
            return self._expr(ast.unparse(node))
        except StageSchemaError as exc:
            raise StageSchemaError(exc.message, line=getattr(node, "lineno", None)) from None

    # ------------------------------------------------------------ the walk

    def next_token(self, pos: tuple[int, int]) -> tokenize.TokenInfo | None:
        for tok in self.tokens_from(pos):
            if tok.type not in (tokenize.NL, tokenize.COMMENT):
                return tok
        return None

    def run(self, tree: ast.Module) -> None:
        nodes = list(ast.walk(tree))
        # what is inside an f-string is converted with it (``on_JoinedStr``), not on its own
        inside = {id(n) for s in nodes if isinstance(s, ast.JoinedStr) for n in ast.walk(s) if n is not s}
        for node in nodes:
            if isinstance(node, ast.Call) and id(node) not in inside:
                paren = self.next_token(self.end(node.func))
                if paren is not None and paren.string == "(":
                    self.call_parens.add(paren.start)
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                self.names_bound.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.Lambda)):
                if isinstance(node, ast.FunctionDef):
                    self.names_bound.add(node.name)
                self.names_bound.update(a.arg for a in node.args.args + node.args.kwonlyargs)
        self.first_refused(nodes)
        for node in nodes:
            name = _HANDLERS.get(type(node))
            if name is not None and id(node) not in inside:
                getattr(self, name)(node)

    def first_refused(self, nodes: list[ast.AST]) -> None:
        """Raise for the refused construct on the lowest line, if any."""
        found: list[tuple[int, int, StageSchemaError]] = []
        for node in nodes:
            if type(node) not in _CHECKED:
                continue
            problem = self.refusal(node)
            if problem is not None:
                found.append((getattr(node, "lineno", 0), getattr(node, "col_offset", 0), problem))
        if found:
            raise min(found, key=lambda f: (f[0], f[1]))[2]

    def refusal(self, node: ast.AST) -> StageSchemaError | None:
        if type(node) in _REFUSED:
            what, hint = _REFUSED[type(node)]
            return _refuse(node, what, hint)
        if isinstance(node, ast.While) and node.orelse:
            return _refuse(node, "'while ... else'", "set a flag before 'break' instead")
        if isinstance(node, (ast.For, ast.While)) and node.orelse:
            return _refuse(node, "'for ... else'", "set a flag before 'break' instead")
        if isinstance(node, ast.FunctionDef) and node.decorator_list:
            return _refuse(node.decorator_list[0], "a decorator ('@')")
        if isinstance(node, ast.Constant) and isinstance(node.value, bytes):
            return _refuse(node, "a bytes literal (b'...')", "use a string")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            return _refuse(node, "the '@' operator")
        if isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Pow) and not isinstance(node.target, ast.Name):
            return _refuse(node, "'**=' on something other than a name", "write 'x = x ** y'")
        if isinstance(node, ast.Delete) and not all(isinstance(t, ast.Subscript) for t in node.targets):
            return _refuse(node, "'del' of a name", "assign None or leave the name unused")
        if isinstance(node, ast.Compare) and len(node.ops) > 1 and not all(map(_simple, node.comparators[:-1])):
            return _refuse(node, "a chained comparison of expressions", "compare twice, joined with 'and'")
        if isinstance(node, ast.FormattedValue) and node.format_spec is not None:
            spec = ast.unparse(node.format_spec)[2:-1] if isinstance(node.format_spec, ast.JoinedStr) else "?"
            what = f"a format spec in an f-string ('{{...:{spec}}}')"
            return _refuse(node, what, "use '%' formatting, e.g. '%03d' % n")
        if isinstance(node, ast.Assert) and not self.alone_on_its_lines(node):
            return _refuse(node, "'assert' sharing its line with another statement", "put it on a line of its own")
        return None

    def alone_on_its_lines(self, node: ast.stmt) -> bool:
        row, col = self.start(node)
        if self.lines[row - 1][:col].strip():
            return False
        end_row, end_col = self.end(node)
        rest = self.lines[end_row - 1][end_col:].strip()
        return not rest or rest.startswith("#")

    # ------------------------------------------------------------ conversions

    def on_While(self, node: ast.While) -> None:
        row, col = self.start(node)
        colon = self.token_after(self.end(node.test), ":")
        body = node.body[0]
        same_line = body.lineno == colon.start[0]
        width = self.indent(row) + 4 if same_line else self.indent(body.lineno)
        pad = " " * width
        var = f"_kraken_while_{row}"
        text = (
            f"for {var} in range({WHILE_LIMIT + 1}):\n"
            f"{pad}if not ({self.expr(node.test)}): break\n"
            f'{pad}if {var} == {WHILE_LIMIT}: fail("this while loop ran {WHILE_LIMIT} times without ending '
            '(stage code loops are bounded)")'
        )
        if same_line:
            self.replace((row, col), self.start(body), text + "\n" + pad)
        else:
            self.replace((row, col), colon.end, text)

    def on_BinOp(self, node: ast.BinOp) -> None:
        if not isinstance(node.op, ast.Pow):
            return
        operator = self.token_after(self.end(node.left), "**")
        start = self.start(node)
        self.replace(start, start, "_kraken_pow(", order=-1)
        self.replace(operator.start, operator.end, ",", order=0)
        end = self.end(node)
        self.replace(end, end, ")", order=1)

    def on_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.op, ast.Pow) and isinstance(node.target, ast.Name):
            name = node.target.id
            self.replace(self.start(node), self.end(node), f"{name} = _kraken_pow({name}, {self.expr(node.value)})")

    def on_Set(self, node: ast.Set | ast.SetComp) -> None:
        (row, col), (end_row, end_col) = self.start(node), self.end(node)
        self.replace((row, col), (row, col + 1), "_kraken_set([")
        self.replace((end_row, end_col - 1), (end_row, end_col), "])")

    on_SetComp = on_Set

    def on_Name(self, node: ast.Name) -> None:
        if node.id in ("set", "frozenset") and isinstance(node.ctx, ast.Load) and node.id not in self.names_bound:
            self.replace(self.start(node), self.end(node), "_kraken_set")

    def on_JoinedStr(self, node: ast.JoinedStr) -> None:
        fields = [v for v in node.values if isinstance(v, ast.FormattedValue)]
        if all(isinstance(f.value, ast.Name) and f.conversion == -1 and f.format_spec is None for f in fields):
            return  # starlark's own f-strings take plain names
        template, args = "", []
        for value in node.values:
            if isinstance(value, ast.Constant):
                template += str(value.value).replace("{", "{{").replace("}", "}}")
            elif isinstance(value, ast.FormattedValue):
                template += "{}"
                arg = self.expr(value.value)
                wrap = {ord("r"): "repr", ord("a"): "repr", ord("s"): "str"}.get(value.conversion)
                args.append(f"{wrap}({arg})" if wrap else arg)
        self.replace(self.start(node), self.end(node), f"({template!r}.format({', '.join(args)}))")

    def on_GeneratorExp(self, node: ast.GeneratorExp) -> None:
        segment = ast.get_source_segment(self.code, node) or ""
        (row, col), (end_row, end_col) = self.start(node), self.end(node)
        own_parens = False
        if (row, col) in self.call_parens:  # Python 3.11: a sole argument's span has the call's parentheses
            self.replace((row, col + 1), (row, col + 1), "[", order=-1)
            self.replace((end_row, end_col - 1), (end_row, end_col - 1), "]", order=1)
            return
        if segment.startswith("(") and segment.endswith(")"):
            try:
                own_parens = isinstance(ast.parse("[" + segment[1:-1] + "]", mode="eval").body, ast.ListComp)
            except SyntaxError:
                own_parens = False
        if own_parens:
            self.replace((row, col), (row, col + 1), "[")
            self.replace((end_row, end_col - 1), (end_row, end_col), "]")
        else:
            self.replace((row, col), (row, col), "[", order=-1)
            self.replace((end_row, end_col), (end_row, end_col), "]", order=1)

    def on_Compare(self, node: ast.Compare) -> None:
        if len(node.ops) < 2:
            return
        parts = [node.left, *node.comparators]
        pairs = [
            f"{self.expr(parts[i])} {_COMPARE_OPS[type(op)]} {self.expr(parts[i + 1])}" for i, op in enumerate(node.ops)
        ]
        self.replace(self.start(node), self.end(node), "(" + " and ".join(pairs) + ")")

    def on_Expr(self, node: ast.Expr) -> None:
        call = node.value
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "sort":
            args = [self.expr(a) for a in call.args] + [f"{k.arg}={self.expr(k.value)}" for k in call.keywords if k.arg]
            text = f"_kraken_sort({', '.join([self.expr(call.func.value), *args])})"
            self.replace(self.start(node), self.end(node), text)

    def on_Try(self, node: ast.Try) -> None:
        row, col = self.start(node)
        self.replace((row, col), (row, col + len("try")), "if True")
        for handler in node.handlers:
            first = self.start(handler)
            colon = self.token_after(self.end(handler.type) if handler.type else first, ":")
            header = f"for {handler.name} in []" if handler.name else "if False"
            self.replace(first, colon.start, header)
        last_body = node.handlers[-1].body[-1] if node.handlers else node.body[-1]
        for block, keyword in ((node.orelse, "else"), (node.finalbody, "finally")):
            if block:
                tok = self.name_between(self.end(last_body), self.start(block[0]), keyword)
                if tok is not None:
                    self.replace(tok.start, tok.end, "if True")
                last_body = block[-1]
        if node.handlers:
            self.notes.append(
                Note(
                    node.lineno,
                    node.body[-1].end_lineno or node.lineno,
                    f"the 'except' at line {node.handlers[0].lineno} cannot catch it: stage code has no exceptions, "
                    "an error inside 'try:' ends the evaluation",
                )
            )

    def on_Raise(self, node: ast.Raise) -> None:
        exc = node.exc
        if isinstance(exc, ast.Call):
            args = [self.expr(a) for a in exc.args] or [repr(ast.unparse(exc.func))]
        elif exc is not None:
            args = [repr(ast.unparse(exc))]
        else:
            args = ['"re-raised"']
        self.replace(self.start(node), self.end(node), f"fail({', '.join(args)})")

    def on_Assert(self, node: ast.Assert) -> None:
        message = self.expr(node.msg) if node.msg else repr(f"assertion failed: {ast.unparse(node.test)}")
        self.replace(self.start(node), self.end(node), f"if not ({self.expr(node.test)}): fail({message})")

    def on_Delete(self, node: ast.Delete) -> None:
        pops = []
        for target in node.targets:
            assert isinstance(target, ast.Subscript)  # the others are refused
            pops.append(f"{self.expr(target.value)}.pop({self.expr(target.slice)})")
        self.replace(self.start(node), self.end(node), "; ".join(pops))


# the node types ``_Finder.refusal`` looks at, and those with an ``on_<type>`` conversion
_CHECKED = frozenset(_REFUSED) | {
    ast.While,
    ast.For,
    ast.FunctionDef,
    ast.Constant,
    ast.BinOp,
    ast.AugAssign,
    ast.Delete,
    ast.Compare,
    ast.FormattedValue,
    ast.Assert,
}
_HANDLERS: dict[type[ast.AST], str] = {
    kind: f"on_{kind.__name__}"
    for kind in (
        ast.While,
        ast.BinOp,
        ast.AugAssign,
        ast.Set,
        ast.SetComp,
        ast.Name,
        ast.JoinedStr,
        ast.GeneratorExp,
        ast.Compare,
        ast.Expr,
        ast.Try,
        ast.Raise,
        ast.Assert,
        ast.Delete,
    )
}


def _simple(node: ast.AST) -> bool:
    """An operand that can be evaluated twice: a name, a constant, an attribute of one."""
    if isinstance(node, (ast.Name, ast.Constant)):
        return True
    return isinstance(node, ast.Attribute) and _simple(node.value)


def syntax_edits(
    code: str, lines: list[str], tokens: list[tokenize.TokenInfo], expr: Convert
) -> tuple[list[Edit], list[Note]] | None:
    """The edits and notes for ``code``, None when Python cannot parse it; ``expr`` converts one
    expression's source (for the parts a conversion rewrites itself)."""
    try:
        tree = ast.parse(code)
        finder = _Finder(code, lines, tokens, expr)
        finder.run(tree)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None  # (very deeply nested code: the sandbox reports what it makes of it)
    return finder.edits, finder.notes
