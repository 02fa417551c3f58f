"""The one error type of stage schemas: code errors carry a line, schema errors a key path."""

from __future__ import annotations

from typing import Any

# The file names the sandbox worker gives to starlark: the author's code, and Kraken's own prelude
# and call. The worker (a script that imports nothing from kraken) has its own copies, which
# tests/stage/test_stage_python_syntax.py checks against these; importing the worker's module here
# would load starlark into every server (#13).
USER_FILE = "stage.star"
OWN_FILE = "<kraken>"


class StageSchemaError(Exception):
    """A stage's code or the schema it returned is wrong.

    ``line``/``column`` (1-based) locate an error in the code; ``path`` names the offending key
    in the returned schema, e.g. ``jobs[0].steps[1].cmd``.
    """

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.path = path

    def __str__(self) -> str:
        if self.line is not None:
            return f"line {self.line}: {self.message}"
        if self.path:
            return f"{self.path}: {self.message}"
        return self.message

    def __repr__(self) -> str:
        return f"StageSchemaError({self.message!r}, line={self.line!r}, column={self.column!r}, path={self.path!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.message, self.line, self.column, self.path))

    def to_dict(self) -> dict[str, Any]:
        """The body of an HTTP 422 answer."""
        return {"message": self.message, "line": self.line, "column": self.column, "path": self.path}


def _rebuild(message: str, line: int | None, column: int | None, path: str | None) -> StageSchemaError:
    return StageSchemaError(message, line=line, column=column, path=path)
