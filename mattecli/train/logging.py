"""The per-step JSONL training log: one JSON object per line, appended as training runs.

Lines are flushed as written, so a killed run keeps everything up to its last step; on
``--resume`` the lines past the checkpoint's step are dropped first, so the log of a
resumed run reads like the log of an uninterrupted one.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, TextIO

from mattecli.errors import CannotWrite
from mattecli.io import atomic

LOG_NAME = "log.jsonl"


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class JsonlLog:
    def __init__(self, path: str | os.PathLike, resume_step: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            self.path.unlink(missing_ok=True)
        elif self.path.exists():
            kept = [line for line in read_log(self.path) if int(line.get("step", 0)) <= resume_step]
            atomic.write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        try:
            self._file: TextIO = open(self.path, "a", encoding="utf-8")
        except OSError as exc:
            raise CannotWrite(self.path, exc) from None

    def write(self, record: dict[str, Any]) -> None:
        try:
            self._file.write(json.dumps({k: _plain(v) for k, v in record.items()}) + "\n")
            self._file.flush()
        except OSError as exc:  # a full disk: name the log, not a bare errno
            raise CannotWrite(self.path, exc) from None

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "JsonlLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_log(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every complete line of a log (a torn last line from a kill is skipped)."""
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records
