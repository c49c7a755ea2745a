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
    records = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or "alpha_path" not in item or "fg_path" not in item:
            raise BadInput(path, f"record {i} lacks alpha_path/fg_path")
        records.append(Record(**{k: v for k, v in item.items() if k in known}))
    return records


def resolve(dataset_dir: str | os.PathLike, relative: str | None) -> Path | None:
    """Absolute path of a record's relative path."""
    return None if relative is None else Path(dataset_dir) / relative
