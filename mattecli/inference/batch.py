"""`mattecli matte` as a library: find the images, pair their guidance, run a method, write outputs.

Rules users can rely on (docs/matte.md):

- Outputs mirror the input tree: ``OUT/<kind>/<relative folder>/<stem>.png``.
- Two inputs in one folder with the same stem (``a.jpg``, ``a.png``) both keep their
  extension in the output name (``a.jpg.png``, ``a.png.png``); a name still taken after that
  (compared case-insensitively) gets ``~2``, ``~3``... in sorted input order. Names are fixed
  on the whole input list before sharding, so every shard agrees.
- Guidance in a folder is paired by relative folder and stem (``trimaps/sub/a.*`` for
  ``sub/a.jpg``), falling back to a file with the same stem at the top of the folder; one
  file (not a folder) serves every image.
- An image whose outputs all exist is skipped unless ``overwrite``; a file that fails is
  reported and the batch goes on. Every write is atomic, so a killed run resumes cleanly.
"""
from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

import numpy as np

from mattecli.data.composite import fit_background
from mattecli.data.trimap import normalise_trimap
from mattecli.errors import BadInput, MatteError
from mattecli.shards import check_shard, shard_range
from mattecli.inference.clicks import DEFAULT_RADIUS, Click, clicks_for, read_clicks
from mattecli.io.atomic import ensure_folder, is_inside
from mattecli.io.images import is_image, list_images, read_alpha, read_rgb, write_image

OUTPUT_KINDS = ("alpha", "rgba", "fg", "comp", "trimap", "uncertainty")
DEFAULT_OUTPUTS = ("alpha", "rgba")
#: kinds only some networks predict (``model.extra_outputs``): SHM's trimap, the click family's sigma
EXTRA_KINDS = ("trimap", "uncertainty")
GUIDANCE_FLAGS = {"trimap": "--trimap", "clicks": "--clicks", "background": "--background"}


@dataclass(frozen=True)
class Item:
    """One input image: where it is, its relative path, and its output name (no extension)."""

    path: Path
    rel: PurePosixPath
    out_rel: PurePosixPath

    def output(self, out: Path, kind: str, kind_folder: bool = True) -> Path:
        """``OUT/<kind>/<rel>.png``, or ``OUT/<rel>.png`` without the kind folder (one kind only)."""
        return (out / kind if kind_folder else out) / f"{self.out_rel.as_posix()}.png"


@dataclass
class Job:
    """An image loaded with its guidance, ready for a method."""

    item: Item
    image: np.ndarray  # uint8 HxWx3 RGB
    guidance: np.ndarray | list[Click] | None  # trimap uint8 HxW, plate uint8 HxWx3, clicks
    kind: str  # "trimap", "clicks", "background" or "none"
    #: extra cues for networks that take them (Background Matting: "segmentation" float HxW in
    #: [0, 1], "motion" uint8 HxWx4 grey frames); None: the network's defaults
    cues: dict | None = None


@dataclass
class MatteOptions:
    input: Path
    out: Path
    outputs: tuple[str, ...] = DEFAULT_OUTPUTS
    trimap: Path | None = None
    clicks: Path | None = None
    background: Path | None = None
    click_radius: float = DEFAULT_RADIUS
    bg_color: tuple[int, int, int] = (255, 255, 255)
    bg_image: Path | None = None
    alpha_bits: int = 8
    overwrite: bool = False
    shard: tuple[int, int] = (1, 1)
    #: False writes OUT/<rel>.png (``mattecli trimap``: a folder ``matte --trimap`` reads as is)
    kind_folders: bool = True
    segmentation: Path | None = None  # --background only: person masks paired like the plates
    segmenter: Path | None = None  # --background only: a guidance-free checkpoint (shm) that makes the masks
    align: bool = False  # --background only: register each plate onto its image (homography)

    def __post_init__(self) -> None:
        check_shard(self.shard)
        if not self.kind_folders and len(self.outputs) != 1:
            raise MatteError("outputs without kind folders need exactly one output kind")


@dataclass
class MatteSummary:
    total: int = 0
    done: int = 0
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (input, problem)
    unused_clicks: list[str] = field(default_factory=list)
    off_level_trimaps: dict[str, int] = field(default_factory=dict)  # trimap -> pixels not 0/128/255


# --- inputs and output names ---------------------------------------------------------------

def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def discover(input_path: Path, exclude: list[Path] = ()) -> list[tuple[Path, PurePosixPath]]:
    """(path, relative path) of every input image, sorted; folders in ``exclude`` are left out."""
    if input_path.is_file():
        if not is_image(input_path):
            raise BadInput(input_path, "not an image file (expected .png, .jpg, .tif, .webp or .bmp)")
        return [(input_path, PurePosixPath(input_path.name))]
    if not input_path.is_dir():
        raise BadInput(input_path, "no such file or folder")
    skip = [e for e in exclude if e is not None and e.is_dir() and _inside(e, input_path)]
    found = [(p, PurePosixPath(p.relative_to(input_path).as_posix())) for p in list_images(input_path)
             if not any(_inside(p, e) for e in skip)]
    if not found:
        raise MatteError(f"{input_path}: no images found (searched recursively)")
    return found


def output_names(rels: list[PurePosixPath]) -> list[PurePosixPath]:
    """Collision-free output paths (without extension) for the sorted relative input paths."""
    groups: dict[tuple[str, str], int] = defaultdict(int)
    for rel in rels:
        groups[(rel.parent.as_posix(), rel.stem.casefold())] += 1
    names = []
    for rel in rels:
        shared = groups[(rel.parent.as_posix(), rel.stem.casefold())] > 1
        names.append(rel.parent / (rel.name if shared else rel.stem))
    taken: set[str] = set()
    out = []
    for name in names:
        candidate, k = name, 1
        while candidate.as_posix().casefold() in taken:
            k += 1
            candidate = name.parent / f"{name.name}~{k}"
        taken.add(candidate.as_posix().casefold())
        out.append(candidate)
    return out


def shard_items(items: list[Item], shard: tuple[int, int]) -> list[Item]:
    """Shard I of N (1-based) takes a contiguous block, as ``compose --shard`` does."""
    return [items[i] for i in shard_range(len(items), shard)]


# --- guidance ----------------------------------------------------------------------------------

class GuidanceFiles:
    """Pairs images with files of a guidance folder (or one file for all)."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.what = what
        if path.is_file():
            self.single: Path | None = path
            return
        if not path.is_dir():
            raise BadInput(path, f"{what}: no such file or folder")
        self.single = None
        self.index: dict[tuple[str, str], list[Path]] = defaultdict(list)
        for p in list_images(path):
            rel = PurePosixPath(p.relative_to(path).as_posix())
            self.index[(rel.parent.as_posix(), rel.stem)].append(p)

    def find(self, item: Item) -> Path:
        if self.single is not None:
            return self.single
        for key in ((item.rel.parent.as_posix(), item.rel.stem), (".", item.rel.stem)):
            found = self.index.get(key, [])
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                same = [p for p in found if p.suffix.lower() == item.rel.suffix.lower()]
                if len(same) == 1:
                    return same[0]
                raise BadInput(item.path, f"several {self.what}s match it in {self.path}: "
                                          f"{', '.join(p.name for p in found)}")
        raise BadInput(item.path, f"no {self.what} for it in {self.path} "
                                  f"(looked for {item.rel.parent / item.rel.stem}.* and {item.rel.stem}.*)")


class GuidanceSource:
    """Loads the guidance of the one kind the run uses, for one item at a time."""

    def __init__(self, options: MatteOptions) -> None:
        given = [k for k in GUIDANCE_FLAGS if getattr(options, k) is not None]
        if len(given) > 1:
            raise MatteError(f"give one kind of guidance, not {' and '.join(GUIDANCE_FLAGS[k] for k in given)}")
        self.kind = given[0] if given else "none"
        self.radius = options.click_radius
        self._plate_cache: tuple[Path, np.ndarray] | None = None
        if self.kind == "clicks":
            self.clicks = read_clicks(options.clicks)
            self.clicks_path = options.clicks
            self.used: set[str] = set()
        elif self.kind in ("trimap", "background"):
            self.files = GuidanceFiles(getattr(options, self.kind), "trimap" if self.kind == "trimap" else "plate")
        for flag, value in (("--segmentation", options.segmentation), ("--segmenter", options.segmenter),
                            ("--align", options.align)):
            if value and self.kind != "background":
                raise MatteError(f"{flag} goes with --background")
        self.segmenter = None  # a mattecli.inference.segmenter.Segmenter, set by plan_matte on the method's device
        self.off_level: dict[str, int] = {}  # trimaps with values other than 0/128/255 (one warning per run)
        self.align = options.align
        self.segmentation = GuidanceFiles(options.segmentation, "segmentation mask") if options.segmentation else None

    def exclude(self) -> list[Path]:
        found = [self.files.path] if self.kind in ("trimap", "background") else []
        return found + ([self.segmentation.path] if self.segmentation is not None else [])

    def cues(self, item: Item, image: np.ndarray) -> dict | None:
        """Background Matting's soft segmentation from ``--segmentation`` (softened as the official
        script softens its person masks), or None."""
        if self.segmentation is None and self.segmenter is None:
            return None
        from mattecli.inference.segmenter import segmentation_cue

        path = None if self.segmenter is not None else self.segmentation.find(item)
        return {"segmentation": segmentation_cue(image, self.segmenter, path, str(item.rel))}

    def load(self, item: Item, image: np.ndarray) -> np.ndarray | list[Click] | None:
        h, w = image.shape[:2]
        if self.kind == "none":
            return None
        if self.kind == "clicks":
            found = clicks_for(self.clicks, item.rel)
            if found is None:
                raise BadInput(item.path, f"no clicks for it in {self.clicks_path} "
                                          f"(keys tried: {item.rel.as_posix()}, {item.rel.with_suffix('').as_posix()})")
            self.used.add(found[0])
            return found[1]
        path = self.files.find(item)
        if self.kind == "trimap":
            trimap, changed = normalise_trimap(read_alpha(path))
            if changed:
                self.off_level[str(path)] = changed
            if trimap.shape != (h, w):
                raise BadInput(path, f"trimap is {trimap.shape[1]}x{trimap.shape[0]} but {item.rel} is {w}x{h}")
            return trimap
        if self._plate_cache is None or self._plate_cache[0] != path:
            self._plate_cache = (path, read_rgb(path))
        plate = self._plate_cache[1]
        if self.align:
            import warnings

            from mattecli.inference.plate import prepare_plate

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return prepare_plate(image, plate, True, False)[0]
        if plate.shape[:2] != (h, w):
            raise BadInput(path, f"plate is {plate.shape[1]}x{plate.shape[0]} but {item.rel} is {w}x{h}")
        return plate

    def unused_keys(self) -> list[str]:
        return sorted(set(self.clicks) - self.used) if self.kind == "clicks" else []


# --- outputs -----------------------------------------------------------------------------------

def unit_to_uint8(x: np.ndarray) -> np.ndarray:
    """Floats in [0, 1] to 8-bit (not :func:`mattecli.io.images.to_uint8`, which narrows 16-bit files)."""
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def extra_to_image(kind: str, value: np.ndarray) -> np.ndarray:
    """A network's extra map as the image written for it.

    - ``trimap``: float HxW in {0, 0.5, 1} (or probabilities of being foreground/unknown
      already reduced to those levels) -> uint8 0/128/255, the trimap files every other
      command reads (nearest level);
    - ``uncertainty``: the predicted per-pixel scale sigma (alpha units, >= 0) -> 16-bit PNG
      of ``sigma * 65535`` clipped to [0, 1], so sigma = value / 65535.
    """
    if kind == "trimap":
        levels = np.clip(np.rint(np.asarray(value, np.float32) * 2.0), 0, 2).astype(np.uint8)
        return np.array([0, 128, 255], np.uint8)[levels]
    if kind == "uncertainty":
        return np.clip(np.rint(np.asarray(value, np.float64) * 65535.0), 0, 65535).astype(np.uint16)
    raise ValueError(f"unknown extra output kind {kind!r}")


class OutputWriter:
    """Writes the requested kinds for one image; every file atomically."""

    def __init__(self, options: MatteOptions) -> None:
        self.out = options.out
        self.kinds = options.outputs
        self.kind_folders = options.kind_folders
        self.alpha_bits = options.alpha_bits
        self.bg_color = np.array(options.bg_color, np.float32) / 255.0
        self.bg_image = read_rgb(options.bg_image) if options.bg_image is not None else None

    @property
    def needs_foreground(self) -> bool:
        return any(k in self.kinds for k in ("rgba", "fg", "comp"))

    def missing(self, item: Item) -> list[str]:
        return [k for k in self.kinds if not item.output(self.out, k, self.kind_folders).exists()]

    def _background(self, h: int, w: int) -> np.ndarray:
        if self.bg_image is None:
            return np.broadcast_to(self.bg_color, (h, w, 3))
        return fit_background(self.bg_image, w, h).astype(np.float32) / 255.0

    def write(self, item: Item, alpha: np.ndarray, fg: np.ndarray | None, kinds: list[str],
              extras: dict[str, np.ndarray] | None = None) -> None:
        """``alpha`` float HxW in [0, 1]; ``fg`` float HxWx3 in [0, 1] (needed for rgba, fg, comp);
        ``extras`` the network's extra maps by kind (see :func:`extra_to_image`)."""
        for kind in kinds:
            path = item.output(self.out, kind, self.kind_folders)
            if kind in EXTRA_KINDS:
                arr = extra_to_image(kind, (extras or {})[kind])
            elif kind == "alpha":
                if self.alpha_bits == 16:
                    arr = np.clip(np.rint(alpha * 65535.0), 0, 65535).astype(np.uint16)
                else:
                    arr = unit_to_uint8(alpha)
            elif kind == "rgba":
                arr = np.dstack([unit_to_uint8(fg), unit_to_uint8(alpha)])
            elif kind == "fg":
                arr = unit_to_uint8(fg)
            else:
                a = alpha[:, :, None]
                arr = unit_to_uint8(fg * a + self._background(*alpha.shape) * (1.0 - a))
            write_image(path, arr)


# --- the run -----------------------------------------------------------------------------------

def plan_items(options: MatteOptions, guidance: GuidanceSource) -> list[Item]:
    """Every input of this shard, with collision-free output names fixed on the whole input."""
    if options.input.is_dir() and options.out.resolve() == options.input.resolve():
        raise MatteError(f"{options.out}: --out is the input folder; outputs would mix with (and could replace) "
                         "the inputs: choose another --out")
    found = discover(options.input, [options.out, *guidance.exclude()])
    names = output_names([rel for _, rel in found])
    items = [Item(path, rel, name) for (path, rel), name in zip(found, names)]
    check_output_paths(options, items)
    return shard_items(items, options.shard)


def check_output_paths(options: MatteOptions, items: list[Item]) -> None:
    """Outputs stay inside --out and never replace an input (docs/limits.md, "Output folders").

    An output folder that is a symbolic link out of --out is refused, as compose refuses it;
    so is an --out whose output files would be input images (``--out w`` for ``w/alpha``).
    """
    out = options.out
    folders = [out / kind for kind in options.outputs] if options.kind_folders else [out]
    for folder in folders:
        if folder.is_symlink() and not is_inside(folder, out):
            raise MatteError(f"{folder}: is a symbolic link out of --out (to {os.path.realpath(folder)}); "
                             f"outputs are written only inside {out}: remove the link or choose another --out")
    inputs = {os.path.realpath(item.path) for item in items}
    for item in items:
        for kind in options.outputs:
            target = item.output(out, kind, options.kind_folders)
            if os.path.realpath(target) in inputs:
                raise MatteError(f"{target}: --out {out} would write the {kind} output over the input image "
                                 f"{item.path}; choose an --out outside the input folders")


@dataclass
class MattePlan:
    """A run checked and planned, before any image is read: every setup error is raised by now."""

    options: MatteOptions
    guidance: GuidanceSource
    writer: OutputWriter
    items: list[Item]


def check_outputs(kinds: tuple[str, ...], method) -> None:
    """Refuse output kinds the method cannot produce (a network's extra maps)."""
    for kind in kinds:
        if kind in EXTRA_KINDS and kind not in getattr(method, "extra_outputs", ()):
            raise MatteError(f"--output {kind}: {method.name} predicts no {kind} map")


def plan_matte(options: MatteOptions, method) -> MattePlan:
    """Check the flags against the method and list this shard's images (raises MatteError)."""
    guidance = GuidanceSource(options)
    method.check_guidance(guidance.kind)
    check_outputs(options.outputs, method)
    if options.segmentation is not None or options.segmenter is not None:
        from mattecli.inference.segmenter import segmenter_for

        guidance.segmenter = segmenter_for(method, options.segmentation, options.segmenter)
    writer = OutputWriter(options)
    method.want_foreground = writer.needs_foreground
    return MattePlan(options, guidance, writer, plan_items(options, guidance))


def write_result(method, writer: OutputWriter, job: Job, result: tuple, kinds: list[str]) -> None:
    """Write one method result ``(alpha, fg or None[, extras])``: estimate the foreground colour
    if the outputs need it and the method gave none."""
    alpha, fg, *rest = result
    if fg is None and writer.needs_foreground:
        fg = method.foreground(job.image, alpha)
    writer.write(job.item, alpha, fg, kinds, rest[0] if rest else None)


def run_matte(options: MatteOptions, method, on_item: Callable[[Item, str], None] | None = None,
              on_start: Callable[[int], None] | None = None, plan: MattePlan | None = None) -> MatteSummary:
    """Matte every image of ``options.input`` with ``method`` (see ``mattecli.inference.methods``).

    ``plan`` (from :func:`plan_matte` with the same options and method) lets a caller see the
    setup errors and the image count before it opens a progress bar. ``on_start(n)`` is
    called with the number of images of this shard before the first one, ``on_item(item,
    status)`` once per image with "done", "skipped" or "failed".
    """
    plan = plan or plan_matte(options, method)
    guidance, writer, items = plan.guidance, plan.writer, plan.items
    ensure_folder(options.out)  # an --out that is a file: one line, not one failure per image
    summary = MatteSummary(total=len(items))
    if on_start is not None:
        on_start(len(items))
    pending: dict[int, list[str]] = {}

    def report(item: Item, status: str, problem: str | None = None) -> None:
        if status == "failed":
            summary.failures.append((item.rel.as_posix(), problem or "failed"))
        elif status == "skipped":
            summary.skipped += 1
        else:
            summary.done += 1
        if on_item is not None:
            on_item(item, status)

    def jobs() -> Iterator[Job]:
        for item in items:
            kinds = list(writer.kinds) if options.overwrite else writer.missing(item)
            if not kinds:
                report(item, "skipped")
                continue
            try:
                image = read_rgb(item.path)
                job = Job(item, image, guidance.load(item, image), guidance.kind, guidance.cues(item, image))
            except MatteError as exc:
                report(item, "failed", str(exc))
                continue
            pending[id(job)] = kinds
            yield job

    for job, result in method.run(jobs()):
        kinds = pending.pop(id(job))
        if isinstance(result, Exception):
            report(job.item, "failed", str(result))
            continue
        try:
            write_result(method, writer, job, result, kinds)
        except (MatteError, OSError, ValueError) as exc:
            report(job.item, "failed", str(exc))
            continue
        report(job.item, "done")
    summary.unused_clicks = guidance.unused_keys()
    summary.off_level_trimaps = dict(guidance.off_level)
    return summary


__all__ = ["Item", "Job", "MatteOptions", "MattePlan", "MatteSummary", "OutputWriter", "GuidanceFiles", "GuidanceSource",
           "discover", "extra_to_image", "output_names", "plan_items", "plan_matte", "run_matte", "write_result",
           "check_outputs", "OUTPUT_KINDS", "EXTRA_KINDS"]
