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


def first_line(exc: BaseException, limit: int = 160) -> str:
    """An exception's first non-empty line (or its type's name), cut to ``limit`` at a word
    boundary (ending ``...``) for a one-line message."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    if len(line) <= limit:
        return line
    cut = line[:limit - 3]
    return (cut.rsplit(" ", 1)[0] if " " in cut[limit // 2:] else cut) + "..."  # never mid-word


def describe_os_error(exc: BaseException) -> str:
    """``No space left on device`` -> ``no space left on device``: the cause as the end of a sentence."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text[:1].lower() + text[1:]


class CannotWrite(MatteError):
    """The environment refused a write (read-only folder, full disk, a file where a folder must be):
    one line naming the output path and the cause."""

    def __init__(self, path: object, cause: object) -> None:
        self.path = str(path)
        self.cause = cause if isinstance(cause, str) else describe_os_error(cause)  # type: ignore[arg-type]
        super().__init__(f"cannot write {self.path}: {self.cause}")

    def __reduce__(self):  # picklable across worker processes
        return (CannotWrite, (self.path, self.cause))
