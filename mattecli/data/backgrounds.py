"""Background sources for ``compose``: a folder, a COCO annotation file, a PASCAL VOC tree, or the samples.

A source is a sorted list of image names (relative paths) under a root folder, plus the
statistics of how it was filtered. Listing stays cheap on 43,100+ images: no image is
opened here (COCO sizes come from the annotations); headers are probed later, by the
worker that uses a background.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mattecli.errors import BadInput, MatteError
from mattecli.io.images import list_images, probe_image

_COCO2014 = re.compile(r"^COCO_(?:train|val)2014_(\d{12}\.jpg)$")


@dataclass
class BackgroundSource:
    """Images a compose run may draw from. ``names`` are POSIX paths relative to ``root``."""

    kind: str  # folder | coco | voc | samples
    spec: str  # what the user gave, for the dataset card
    root: Path
    names: list[str]
    stats: dict[str, int] = field(default_factory=dict)
    _index: dict[str, str] | None = field(default=None, repr=False)

    def path(self, name: str) -> Path:
        return self.root / name

    def resolve(self, listed: str) -> str | None:
        """The source name a name-list line refers to: exact relative path, else a unique file
        name, else a COCO 2014 name mapped to its 2017 file name (as mmagic's converter does)."""
        if self._index is None:
            index = {n: n for n in self.names}
            base_of = {n: n.rsplit("/", 1)[-1] for n in self.names}
            counts = Counter(base_of.values())
            for n, base in base_of.items():
                if counts[base] == 1:
                    index.setdefault(base, n)
            self._index = index
        listed = listed.strip().replace("\\", "/")
        found = self._index.get(listed)
        if found is None:
            m = _COCO2014.match(listed.rsplit("/", 1)[-1])
            if m:
                found = self._index.get(m.group(1))
        return found


def _filter_by_size(root: Path, names: list[str], min_size: int, stats: dict[str, int]) -> list[str]:
    """Keep images whose shorter side is at least ``min_size`` (header probe per image)."""
    kept = []
    for n in names:
        try:
            info = probe_image(root / n)
        except BadInput:
            stats["unreadable"] = stats.get("unreadable", 0) + 1
            continue
        if min(info.width, info.height) >= min_size:
            kept.append(n)
        else:
            stats["too_small"] = stats.get("too_small", 0) + 1
    return kept


def folder_source(folder: str | os.PathLike, min_size: int = 0) -> BackgroundSource:
    """Every image under ``folder`` (recursive), sorted by relative path."""
    root = Path(folder)
    if not root.is_dir():
        raise BadInput(root, "background folder does not exist")
    names = [p.relative_to(root).as_posix() for p in list_images(root)]
    stats = {"listed": len(names)}
    if min_size:
        names = _filter_by_size(root, names, min_size, stats)
    stats["available"] = len(names)
    return BackgroundSource("folder", str(root), root, names, stats)


def coco_source(annotations: str | os.PathLike, image_root: str | os.PathLike | None,
                exclude_categories: tuple[str, ...] = (), min_size: int = 0) -> BackgroundSource:
    """Images of a COCO annotation file, minus those showing an excluded category or too small.

    Sizes come from the annotation file, so ``min_size`` costs nothing; images the file
    names but ``image_root`` lacks are left out and counted (a partial download still works).
    """
    from pycocotools.coco import COCO  # the reference reader of the format

    ann_path = Path(annotations)
    if not ann_path.is_file():
        raise BadInput(ann_path, "COCO annotation file does not exist")
    if image_root is None:
        raise MatteError(f"--bg coco:{ann_path} needs --bg-root, the folder holding its images")
    root = Path(image_root)
    if not root.is_dir():
        raise BadInput(root, "--bg-root folder does not exist")
    import contextlib
    import io

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints timing lines
            coco = COCO(str(ann_path))
    except (ValueError, KeyError, TypeError, AssertionError) as exc:
        raise BadInput(ann_path, f"not a COCO annotation file ({type(exc).__name__}: {exc})") from None
    cats = {c["name"]: c["id"] for c in coco.loadCats(coco.getCatIds())}
    unknown = [c for c in exclude_categories if c not in cats]
    if unknown:
        raise BadInput(ann_path, f"no category named {', '.join(map(repr, unknown))} "
                                 f"(it has {len(cats)} categories, e.g. {', '.join(sorted(cats)[:5])})")
    excluded_ids: set[int] = set()
    for name in exclude_categories:
        excluded_ids.update(coco.getImgIds(catIds=[cats[name]]))
    stats = {"listed": len(coco.imgs), "excluded_by_category": 0, "too_small": 0, "missing_on_disk": 0}
    names = []
    for img_id in sorted(coco.imgs):
        info = coco.imgs[img_id]
        if img_id in excluded_ids:
            stats["excluded_by_category"] += 1
            continue
        if min_size and min(int(info.get("width", 0)), int(info.get("height", 0))) < min_size:
            stats["too_small"] += 1
            continue
        name = str(info["file_name"])
        if not (root / name).is_file():
            stats["missing_on_disk"] += 1
            continue
        names.append(name)
    names.sort()
    stats["available"] = len(names)
    return BackgroundSource("coco", f"coco:{ann_path}", root, names, stats)


def voc_source(voc_root: str | os.PathLike, split: str = "trainval", min_size: int = 0) -> BackgroundSource:
    """The ``JPEGImages/<id>.jpg`` listed in ``ImageSets/Main/<split>.txt`` of a VOC tree."""
    root = Path(voc_root)
    split_file = root / "ImageSets" / "Main" / f"{split}.txt"
    if not split_file.is_file():
        raise BadInput(split_file, "VOC split list does not exist (is --bg voc:DIR a VOCdevkit/VOC20xx folder?)")
    images = root / "JPEGImages"
    ids = [line.split()[0] for line in split_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    stats = {"listed": len(ids), "missing_on_disk": 0}
    names = []
    for i in ids:
        if (images / f"{i}.jpg").is_file():
            names.append(f"{i}.jpg")
        else:
            stats["missing_on_disk"] += 1
    names = sorted(set(names))
    if min_size:
        names = _filter_by_size(images, names, min_size, stats)
    stats["available"] = len(names)
    return BackgroundSource("voc", f"voc:{root}", images, names, stats)


def samples_source(bg_dir: str | os.PathLike) -> BackgroundSource:
    """The built-in sample backgrounds (written by ``mattecli.data.samples.write_samples``)."""
    src = folder_source(bg_dir)
    src.kind, src.spec = "samples", "samples"
    return src


def open_source(spec: str, bg_root: str | os.PathLike | None = None, exclude_categories: tuple[str, ...] = (),
                min_size: int = 0, voc_split: str = "trainval") -> BackgroundSource:
    """Parse ``--bg``: a folder, ``coco:ANNOTATIONS.json`` (with ``bg_root``) or ``voc:VOC_ROOT``."""
    if exclude_categories and not spec.startswith("coco:"):
        raise MatteError("--exclude-category only applies to a coco: background source")
    if spec.startswith("coco:"):
        return coco_source(spec[5:], bg_root, exclude_categories, min_size)
    if spec.startswith("voc:"):
        return voc_source(spec[4:], voc_split, min_size)
    return folder_source(spec, min_size)
