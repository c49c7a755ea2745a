"""Exclusive run locks: one process at a time writes a given set of outputs.

POSIX ``flock`` on a small lock file: the kernel releases it when the process dies, even by
kill -9, so a lock never outlives its run and a crash never needs cleaning up by hand. On
systems without ``fcntl`` (Windows) the lock is a no-op.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import IO

from mattecli.errors import MatteError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


class ExclusiveLock:
    """Taken at construction (or refused with ``busy``, one line); ``release()`` or ``with`` frees it."""

    def __init__(self, path: str | os.PathLike, busy: str, wait: float = 0.0) -> None:
        """``wait``: seconds to wait for another holder to finish before refusing with ``busy``."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] | None = open(self.path, "a+b")
        if fcntl is None:
            return
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError:
                if time.monotonic() >= deadline:
                    self.release()
                    raise MatteError(busy) from None
                time.sleep(0.02)

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "ExclusiveLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
