"""Atomic file writes: a crash or kill -9 never leaves a truncated output behind.

Every writer in mattecli goes through here: data is written to a temporary file in the
destination folder and moved into place with ``os.replace`` (atomic on POSIX). A killed
process therefore leaves either the old file, the new file, or a stray temporary (which
``remove_stale_temps`` cleans up), never a half-written output. No fsync: surviving a
power cut is not the goal, and fsync per image would double the cost of ``compose``.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from mattecli.errors import BadInput, CannotWrite

TEMP_MARK = ".mattecli-tmp-"


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _temp_prefix(path: Path) -> str:
    """Temporaries carry their output's name, so a rerun can find the ones it left."""
    return f"{TEMP_MARK}{path.name}."


def temp_beside(path: Path) -> Path:
    """A new empty temporary file in ``path``'s folder (created), with the mode a plain open() gives.

    mkstemp makes private 0600 files; outputs get the usual mode once moved into place.
    """
    ensure_folder(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=path.suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)
    return Path(tmp)


def temp_dir_beside(path: Path) -> Path:
    """A new temporary folder in ``path``'s folder (created), with the mode a plain mkdir() gives."""
    ensure_folder(path.parent)
    tmp = tempfile.mkdtemp(prefix=_temp_prefix(path), dir=path.parent)
    os.chmod(tmp, 0o777 & ~_UMASK)
    return Path(tmp)


def ensure_folder(path: str | os.PathLike) -> Path:
    """Create an output folder (and its parents), or say in one line why it cannot be."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CannotWrite(path, "it is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CannotWrite(exc.filename or path, exc) from None
    return path


_staging = threading.local()  # the writes of this thread's all_or_nothing() block, if one is open


@contextmanager
def all_or_nothing() -> Iterator[None]:
    """Every :func:`atomic_path` write in the block (this thread) lands together, or none does.

    The writes go to their temporaries as usual; the renames into place wait for the end of
    the block, and an exception anywhere in it removes every temporary instead. A rename that
    fails at the end (rare: the temporaries are complete by then) removes the temporaries
    not yet moved and is reported as :class:`CannotWrite`.
    """
    if getattr(_staging, "pending", None) is not None:
        raise RuntimeError("all_or_nothing() blocks do not nest")
    pending: list[tuple[Path, Path]] = []
    _staging.pending = pending
    try:
        yield
    except BaseException:
        for tmp, _ in pending:
            _remove_quietly(tmp)
        raise
    finally:
        _staging.pending = None
    for k, (tmp, path) in enumerate(pending):
        try:
            os.replace(tmp, path)
        except OSError as exc:
            for rest, _ in pending[k:]:
                _remove_quietly(rest)
            raise CannotWrite(path, exc) from None


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically
    (at the end of the enclosing :func:`all_or_nothing` block, if there is one)."""
    path = Path(path)
    try:
        tmp_path = temp_beside(path)
    except OSError as exc:  # read-only, full, or a file where the folder should be
        raise CannotWrite(path, exc) from None
    try:
        yield tmp_path
        pending = getattr(_staging, "pending", None)
        if pending is None:
            os.replace(tmp_path, path)
        else:
            if path.is_dir():
                raise CannotWrite(path, "it is a folder, not a file")
            pending.append((tmp_path, path))
    except BaseException as exc:
        try:
            tmp_path.unlink(missing_ok=True)
        except OSError:
            pass
        if isinstance(exc, OSError) and _about_output(exc, path, tmp_path):
            raise CannotWrite(path, exc) from None
        raise


def _about_output(exc: OSError, path: Path, tmp: Path) -> bool:
    """Whether an OSError inside :func:`atomic_path` concerns the output (not a file being read)."""
    names = {n for n in (exc.filename, exc.filename2) if n is not None}
    return not names or bool(names & {str(path), str(tmp), os.fspath(path), os.fspath(tmp)})


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    write_text(path, json.dumps(obj, indent=indent, sort_keys=False) + "\n")


def refuse_existing(path: str | os.PathLike, overwrite: bool) -> None:
    """A single-file output that exists is replaced only with ``--overwrite`` (as compose and matte do)."""
    path = Path(path)
    if path.is_dir():
        raise BadInput(path, "is a folder; give the path of the file to write")
    if not overwrite and (path.exists() or path.is_symlink()):
        raise BadInput(path, "exists; give --overwrite to replace it, or choose another --out")


def is_inside(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """Whether ``path`` (symbolic links resolved) lies in ``root`` (resolved too)."""
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
        return True
    except ValueError:
        return False


def unlink_inside(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """Delete the file (or symbolic link) ``path`` only if its folder lies in ``root``, links resolved.

    A link is removed itself, never its target; a folder on the way that is a link out of
    ``root`` makes this refuse (returns False) instead of deleting someone else's file.
    """
    path = Path(path)
    if not is_inside(path.parent, root) or path.is_dir() and not path.is_symlink():
        return False
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def remove_stale_temps(folder: str | os.PathLike, output: str | os.PathLike | None = None) -> int:
    """Delete temporaries (files or folders) left by a killed run; they are never valid outputs.

    With ``output``, only those of that one output path (for commands whose folder other
    runs may be writing into at the same time).
    """
    pattern = f"{_temp_prefix(Path(output))}*" if output is not None else f"{TEMP_MARK}*"
    found = Path(output).parent.glob(pattern) if output is not None else Path(folder).rglob(pattern)
    root = Path(folder) if output is None else Path(output).parent
    n = 0
    for p in list(found):
        if not is_inside(p.parent, root):  # never through a link out of the folder
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        n += 1
    return n
