"""The dataset manifest: mmagic's Composition-1k annotation list, plus mattecli's extras.

A ``mattecli compose`` output folder holds ``manifest.json``: a JSON list of records with
``alpha_path``, ``fg_path``, ``bg_path``, ``merged_path``, ``trimap_path`` (mmagic's keys),
``plate_path`` and ``bg_source``, every path relative to the folder, so mmagic's
``AdobeComp1kDataset`` can read the folder unchanged and the folder can be moved.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from mattecli.errors import BadInput
from mattecli.io import atomic

MANIFEST_NAME = "manifest.json"
PATH_KEYS = ("alpha_path", "fg_path", "bg_path", "merged_path", "trimap_path", "plate_path")


@dataclass
class Record:
    """One composite; paths are relative to the dataset folder (None when not produced)."""

    alpha_path: str
    fg_path: str
    bg_path: str | None = None
    merged_path: str | None = None
    trimap_path: str | None = None
    plate_path: str | None = None
    bg_source: str | None = None

    @property
    def name(self) -> str:
        """The composite's name, ``<fg stem>_<k>``, or the foreground stem without composites."""
        return Path(self.merged_path or self.fg_path).stem

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def manifest_path(dataset_dir: str | os.PathLike) -> Path:
    return Path(dataset_dir) / MANIFEST_NAME


def write_manifest(dataset_dir: str | os.PathLike, records: list[Record]) -> Path:
    path = manifest_path(dataset_dir)
    atomic.write_json(path, [r.to_json() for r in records], indent=1)
    return path


def read_manifest(dataset_dir: str | os.PathLike) -> list[Record]:
    """Records of a dataset folder; accepts mmagic's old (list) and new (data_list) forms."""
    path = manifest_path(dataset_dir)
    if not path.is_file():
        raise BadInput(dataset_dir, f"no {MANIFEST_NAME}: not a mattecli/mmagic dataset folder")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadInput(path, f"not valid JSON ({exc})") from None
    if isinstance(data, dict):
        data = data.get("data_list")
    if not isinstance(data, list):
        raise BadInput(path, "expected a list of records (or an object with 'data_list')")
    known = {f.name for f in fields(Record)}
    root = Path(dataset_dir).resolve()
    root_text = os.fspath(root)
    parents: dict[str, tuple[str, set[str]]] = {}
    records = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or "alpha_path" not in item or "fg_path" not in item:
            raise BadInput(path, f"record {i} lacks alpha_path/fg_path")
        record = Record(**{k: v for k, v in item.items() if k in known})
        for key in PATH_KEYS:
            value = getattr(record, key)
            if value is not None and not (isinstance(value, str) and value and not os.path.isabs(value)
                                          and _resolves_inside(root_text, value, parents)):
                confined_path(dataset_dir, value, f"record {i} ({record_label(record)}) {key}", root)  # raises
        records.append(record)
    return records


def record_label(record: Record) -> str:
    try:
        return record.name
    except TypeError:
        return "?"


def confined_path(dataset_dir: str | os.PathLike, relative: object, where: str = "a record's path",
                  root: Path | None = None, parents: dict | None = None) -> Path | None:
    """The file a record names, refused (one line naming the record) unless it lies inside the
    dataset folder once symbolic links are resolved: a manifest must not make mattecli read
    ``/etc/passwd`` or ``../../elsewhere``. None stays None. ``parents`` caches resolved folders
    (a manifest names a few folders many times)."""
    if relative is None:
        return None
    manifest = manifest_path(dataset_dir)
    if not isinstance(relative, str) or not relative:
        raise BadInput(manifest, f"{where}: expected a relative path, got {relative!r}")
    root_text = os.fspath(root or Path(dataset_dir).resolve())
    if os.path.isabs(relative) or not _resolves_inside(root_text, relative, {} if parents is None else parents):
        raise BadInput(manifest, f"{where} {relative!r} lies outside the dataset folder {dataset_dir}; "
                                 f"records must name files inside it")
    return Path(dataset_dir) / relative


def _resolves_inside(root: str, relative: str, parents: dict[str, tuple[str, set[str]]]) -> bool:
    """Whether ``root/relative`` resolves inside ``root``: each folder is resolved once and listed
    once for its symbolic links (a manifest names few folders, many files), so a 43,000-record
    manifest costs a few directory listings, not a stat per path."""
    folder, name = os.path.split(relative)
    known = parents.get(folder)
    if known is None:
        resolved = os.path.realpath(os.path.join(root, folder))
        try:
            with os.scandir(resolved) as entries:
                links = {e.name for e in entries if e.is_symlink()}
        except OSError:  # missing or unreadable: its files are reported missing by whoever opens them
            links = set()
        known = parents[folder] = (resolved, links)
    resolved, links = known
    target = os.path.join(resolved, name)
    if name in ("", ".", "..") or name in links:
        target = os.path.realpath(target)
    return target == root or target.startswith(root.rstrip(os.sep) + os.sep)


def resolve(dataset_dir: str | os.PathLike, relative: str | None) -> Path | None:
    """Path of a record's relative path. Records from :func:`read_manifest` are already checked
    with symbolic links resolved; this repeats the cheap part (no absolute path, no ``..`` out of
    the folder) for paths from anywhere else, without a file-system call per path."""
    if relative is None:
        return None
    if not isinstance(relative, str) or not relative or os.path.isabs(relative) \
            or os.path.normpath(relative).split(os.sep, 1)[0] == "..":
        raise BadInput(manifest_path(dataset_dir), f"{relative!r} lies outside the dataset folder {dataset_dir}; "
                                                   "records must name files inside it")
    return Path(dataset_dir) / relative
