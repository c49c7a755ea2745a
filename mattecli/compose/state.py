"""What is on disk: which composites are done, and the manifest and card rebuilt from it.

Resume and shards rest on one rule: a composite is done when all of its output files (and
its foreground's fg/ and alpha/ files) exist. Files are written atomically, so existing
means complete. The manifest is never appended to: at the end of every run it is rebuilt
from the full plan, listing the done composites in plan order, under an exclusive lock. So
the last shard to finish writes the same manifest an unsharded run writes, byte for byte,
and a killed run's rerun repairs it.

Locks (POSIX ``flock``, released by the kernel when a process dies, even by kill -9): every
run holds ``.mattecli-compose.lock`` shared while it works; stale temporaries are deleted
only by a run that can take it exclusively, i.e. when no other shard is writing into the
same folder. Manifest rebuilds serialise on ``.mattecli-manifest.lock``.
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from mattecli.compose.inputs import Foreground
from mattecli.compose.layout import CARD_NAME, OUTPUT_DIRS, SAMPLES_DIR, composite_outputs
from mattecli.compose.plan import Composite
from mattecli.data.manifest import PATH_KEYS, Record, read_manifest, write_manifest
from mattecli.errors import MatteError
from mattecli.io import atomic

try:
    import fcntl
except ImportError:  # Windows: no concurrent shards into one folder, so no locks needed
    fcntl = None  # type: ignore[assignment]

RUN_LOCK = ".mattecli-compose.lock"
MANIFEST_LOCK = ".mattecli-manifest.lock"


class RunLock:
    """Held shared for the whole run; ``try_exclusive`` tells whether this run is alone."""

    def __init__(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] | None = open(out / RUN_LOCK, "a+b")

    def try_exclusive(self) -> bool:
        if fcntl is None:
            return True
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False

    def share(self) -> None:
        if fcntl is not None:
            fcntl.flock(self._file, fcntl.LOCK_SH)

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@contextmanager
def exclusive(out: Path, name: str = MANIFEST_LOCK) -> Iterator[None]:
    with open(out / name, "a+b") as f:
        if fcntl is not None:
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


def read_card(out: Path) -> dict | None:
    path = out / CARD_NAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def check_compatible(out: Path, fingerprint: dict, overwrite: bool) -> None:
    """Refuse to mix two different plans or settings in one folder (unless --overwrite)."""
    card = read_card(out)
    if card is None or overwrite:
        return
    before = card.get("fingerprint") or {}
    changed = [k for k in fingerprint if before.get(k) != fingerprint[k]]
    if changed:
        raise MatteError(f"{out}: this folder was composed with different {', '.join(changed)}; "
                         f"rerun with --overwrite to redo it, or choose another --out")


def is_done(out: Path, fg: Foreground, c: Composite, trimaps: bool, plates: bool) -> bool:
    paths = [fg.fg_out, fg.alpha_out, *composite_outputs(c.name, trimaps, plates).values()]
    return all(os.path.exists(out / p) for p in paths)


def check_output_folders(out: Path) -> None:
    """Every output folder must be a real folder inside ``out``: compose never writes into, nor
    deletes through, a symbolic link that leads out of it (someone else's files)."""
    for d in (*OUTPUT_DIRS, SAMPLES_DIR):
        folder = out / d
        if folder.is_symlink() and not atomic.is_inside(folder, out):
            raise MatteError(f"{folder}: is a symbolic link out of --out (to {os.path.realpath(folder)}); "
                             f"compose writes and deletes only inside {out}: remove the link or choose another --out")
        if folder.exists() and not folder.is_dir():
            raise MatteError(f"{folder}: is a file, not a folder; compose needs it for its outputs")


def _previous_outputs(out: Path) -> set[str]:
    """The relative paths the previous run's manifest names (its plan's outputs)."""
    try:
        records = read_manifest(out)
    except MatteError:
        return set()
    named = set()
    for r in records:
        for key in PATH_KEYS:
            rel = getattr(r, key)
            if isinstance(rel, str) and rel.split("/", 1)[0] in OUTPUT_DIRS:
                named.add(rel)
    return named


def remove_unplanned(out: Path, foregrounds: list[Foreground], plan: list[Composite]) -> int:
    """--overwrite: delete the outputs the previous plan (its manifest) named that this plan does not.

    Only files a plan names are ever deleted, and only inside ``out`` (see
    :func:`check_output_folders`): a file of any other name in the output folders stays.
    """
    keep = {fg.fg_out for fg in foregrounds} | {fg.alpha_out for fg in foregrounds}
    for c in plan:
        keep.update(composite_outputs(c.name, True, True).values())
    removed = 0
    for rel in sorted(_previous_outputs(out) - keep):
        removed += atomic.unlink_inside(out / rel, out)
    return removed


def remove_foreground_files(out: Path, foregrounds: list[Foreground]) -> None:
    """--overwrite: drop these foregrounds' fg/ and alpha/ copies so the workers write them anew
    (a kept copy would pair a changed input's new composites with its old alpha)."""
    for fg in foregrounds:
        for rel in (fg.fg_out, fg.alpha_out):
            atomic.unlink_inside(out / rel, out)


def rebuild_manifest(out: Path, foregrounds: list[Foreground], plan: list[Composite], trimaps: bool,
                     plates: bool) -> set[str]:
    """Write manifest.json from the done composites of the full plan; returns the names it lists."""
    records, listed = [], set()
    for c in plan:
        fg = foregrounds[c.fg]
        if not is_done(out, fg, c, trimaps, plates):
            continue
        paths = composite_outputs(c.name, trimaps, plates)
        records.append(Record(alpha_path=fg.alpha_out, fg_path=fg.fg_out, bg_source=c.bg_name, **paths))
        listed.add(c.name)
    write_manifest(out, records)
    return listed


def write_card(out: Path, card: dict) -> None:
    atomic.write_json(out / CARD_NAME, card)
