"""Which prediction goes with which ground truth and trimap.

Files are matched by their path relative to their folder without the extension, so
``pred/a/b.png`` pairs with ``gt/a/b.jpg``. A ground truth may also be found under the name
with a trailing ``_<k>`` removed: Composition-1k keeps one alpha per foreground
(``alpha/<fg>.png``) and one trimap and prediction per composite (``<fg>_<k>.png``).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from mattecli.data.manifest import read_manifest, resolve
from mattecli.errors import BadInput
from mattecli.io.images import list_images

_COMPOSITE_SUFFIX = re.compile(r"_\d+$")


@dataclass(frozen=True)
class EvalItem:
    """One image to score; ``name`` is what the reports show."""

    name: str
    pred: Path
    gt: Path
    trimap: Path | None  # None: scored over the whole image only


@dataclass
class Pairing:
    items: list[EvalItem] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # one readable line per unpaired name


def index_folder(folder: str | os.PathLike) -> dict[str, Path]:
    """Images under ``folder`` keyed by relative path without extension."""
    folder = Path(folder)
    index: dict[str, Path] = {}
    for path in list_images(folder):
        key = path.relative_to(folder).with_suffix("").as_posix()
        if key in index:
            raise BadInput(path, f"ambiguous: {index[key].name} has the same name; keep one of them")
        index[key] = path
    return index


def _find_gt(index: dict[str, Path], key: str) -> Path | None:
    return index.get(key) or index.get(_COMPOSITE_SUFFIX.sub("", key))


def pair_folders(pred_dir: str | os.PathLike, gt_dir: str | os.PathLike,
                 trimap_dir: str | os.PathLike | None) -> Pairing:
    """Every name with a prediction or a trimap, paired; the incomplete ones listed.
    Without ``trimap_dir`` (whole-image scoring) predictions pair with ground truths only."""
    preds, gts = index_folder(pred_dir), index_folder(gt_dir)
    trimaps = index_folder(trimap_dir) if trimap_dir is not None else None
    pairing = Pairing()
    for key in sorted(set(preds) | set(trimaps or ())):
        gt = _find_gt(gts, key)
        checks = [("prediction", preds.get(key)), ("ground truth", gt)]
        if trimaps is not None:
            checks.append(("trimap", trimaps.get(key)))
        lacks = [what for what, found in checks if found is None]
        if lacks:
            pairing.missing.append(f"{key}: no {' and no '.join(lacks)}")
        else:
            pairing.items.append(EvalItem(key, preds[key], gt, trimaps[key] if trimaps is not None else None))
    return pairing


def pair_dataset(pred_dir: str | os.PathLike, dataset_dir: str | os.PathLike, need_trimap: bool = True) -> Pairing:
    """Predictions named after a dataset's composites (``<fg stem>_<k>``), scored against the
    record's alpha and trimap from ``manifest.json`` (the trimap only if ``need_trimap``)."""
    preds = index_folder(pred_dir)
    by_stem: dict[str, Path | None] = {}
    for key, path in preds.items():
        stem = key.rsplit("/", 1)[-1]
        by_stem[stem] = None if stem in by_stem else path  # None: the stem is not unique
    pairing = Pairing()
    for record in read_manifest(dataset_dir):
        name = record.name
        pred = preds.get(name) or by_stem.get(name)
        checks = [("prediction", pred)] + ([("trimap", record.trimap_path)] if need_trimap else [])
        lacks = [what for what, found in checks if not found]
        if lacks:
            pairing.missing.append(f"{name}: no {' and no '.join(lacks)}")
            continue
        pairing.items.append(EvalItem(name, pred, resolve(dataset_dir, record.alpha_path),
                                      resolve(dataset_dir, record.trimap_path) if record.trimap_path else None))
    return pairing


def pair_files(pred: str | os.PathLike, gt: str | os.PathLike | None, trimap: str | os.PathLike | None,
               need_trimap: bool = True) -> Pairing:
    """One prediction file scored against one ground-truth file (and one trimap file), whatever their names."""
    pred = Path(pred)
    for path, flag in ((gt, "--gt"), (trimap, "--trimap")):
        if path is not None and not Path(path).is_file():
            raise BadInput(path, f"{flag}: with a single prediction file, give a single file here too")
    if gt is None:
        raise BadInput(pred, "a single prediction file needs --gt GT_FILE")
    if need_trimap and trimap is None:
        raise BadInput(pred, "a single prediction file needs --trimap TRIMAP_FILE (or --region all)")
    return Pairing([EvalItem(pred.stem, pred, Path(gt), Path(trimap) if trimap is not None else None)])


PAIR_COLUMNS = ("pred", "gt", "trimap")


def pair_list(list_path: str | os.PathLike, need_trimap: bool = True) -> Pairing:
    """Pairs named in a CSV (header ``pred,gt,trimap``; ``name`` optional) or a JSON list of objects
    with those keys, for files whose names do not match. Relative paths are read from the list's
    folder; a missing file is listed in ``missing``, as with folders."""
    import csv
    import json

    list_path = Path(list_path)
    try:
        text = list_path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(list_path, f"cannot read the pairs list: {exc}") from None
    try:
        if list_path.suffix.lower() == ".json":
            rows = json.loads(text)
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise ValueError("expected a JSON list of objects with keys pred, gt (and trimap)")
        else:
            rows = list(csv.DictReader(text.splitlines()))
            if rows and not {"pred", "gt"} <= set(rows[0]):
                raise ValueError("expected a CSV header with columns pred,gt (and trimap)")
    except ValueError as exc:
        raise BadInput(list_path, str(exc).splitlines()[0]) from None
    base, pairing, seen = list_path.parent, Pairing(), set()
    for number, row in enumerate(rows, 1):
        files = {k: (base / str(row[k]).strip()) if str(row.get(k) or "").strip() else None for k in PAIR_COLUMNS}
        if files["pred"] is None or files["gt"] is None or (need_trimap and files["trimap"] is None):
            raise BadInput(list_path, f"entry {number}: needs pred, gt{' and trimap' if need_trimap else ''}")
        pred = files["pred"]
        name = str(row.get("name") or "").strip() or (
            pred.with_suffix("").relative_to(base).as_posix() if pred.is_relative_to(base) else pred.stem)
        if name in seen:
            raise BadInput(list_path, f"entry {number}: the name {name} is listed twice")
        seen.add(name)
        lacks = [what for what, key in (("prediction", "pred"), ("ground truth", "gt"), ("trimap", "trimap"))
                 if (need_trimap or key != "trimap") and not files[key].is_file()]
        if lacks:
            pairing.missing.append(f"{name}: no {' and no '.join(lacks)} ({list_path}, entry {number})")
            continue
        pairing.items.append(EvalItem(name, files["pred"], files["gt"], files["trimap"] if need_trimap else None))
    return pairing
