"""User-facing errors: one clear line, no traceback."""
from __future__ import annotations


class MatteError(Exception):
    """A problem with the user's input or environment that the CLI reports as one line.

    The message should name the file (if any) and say what is wrong with it.
    """


class BadInput(MatteError):
    """A specific input file is unreadable, malformed or inconsistent."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
