"""The work of one task: one foreground over a few backgrounds, every output written atomically.

Runs in pool workers (or in-process with one worker). Every output is a pure function of the
inputs, the seed and the composite's name, so which worker makes it never changes a byte.
A broken background fails only its own composite; the task goes on.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mattecli.compose.inputs import Foreground
from mattecli.compose.layout import composite_outputs
from mattecli.compose.plan import Composite
from mattecli.data.composite import PreparedForeground, crop_range, fit_background
from mattecli.data.plates import PlateSpec, cast_shadow, make_plate
from mattecli.data.trimap import TrimapSpec, random_trimap
from mattecli.errors import MatteError
from mattecli.io import atomic
from mattecli.io.images import probe_image, read_alpha, read_rgb, write_image
from mattecli.seeding import rng_for


@dataclass(frozen=True)
class Job:
    """Settings every task shares (sent to workers once per task; small)."""

    out: Path
    bg_root: Path
    seed: int
    crop: str
    resize: str  # background upscaling kernel: "pil" (published) or "opencv"
    blend: str  # blend precision: "float64" (published) or "float32"
    trimaps: bool
    trimap_spec: TrimapSpec
    plates: bool
    plate_spec: PlateSpec
    png_level: int
    link: bool


@dataclass(frozen=True)
class Outcome:
    name: str
    error: str | None = None
    upscaled: bool = False


def _place(src: Path, dst: Path, link: bool) -> None:
    """Hard-link (or copy) ``src`` to ``dst`` atomically; a link costs no space or time.

    A symbolic link among the inputs is followed: the dataset gets its target's bytes, never a
    copy of the link (which, if relative, would dangle inside the dataset).
    """
    src = Path(os.path.realpath(src))
    with atomic.atomic_path(dst) as tmp:
        tmp.unlink()
        if link:
            try:
                os.link(src, tmp)
                return
            except OSError:  # another file system, or links unsupported
                pass
        shutil.copyfile(src, tmp)


def ensure_foreground_files(job: Job, fg: Foreground, rgb: np.ndarray | None, alpha: np.ndarray | None) -> None:
    """The dataset's own fg/ and alpha/ copy: linked as is, or the converted 8-bit image."""
    fg_dst, alpha_dst = job.out / fg.fg_out, job.out / fg.alpha_out
    if not fg_dst.exists():
        if fg.fg_convert:
            write_image(fg_dst, rgb if rgb is not None else read_rgb(fg.fg_path), png_compression=job.png_level)
        else:
            _place(fg.fg_path, fg_dst, job.link)
    if not alpha_dst.exists():
        if fg.alpha_convert:
            write_image(alpha_dst, alpha if alpha is not None else read_alpha(fg.alpha_path),
                        png_compression=job.png_level)
        else:
            _place(fg.alpha_path, alpha_dst, job.link)


def crop_offset(job: Job, name: str, bg_shape: tuple[int, ...], width: int, height: int) -> tuple[int, int]:
    """(0, 0) as published, or a position drawn from (seed, name) for ``--crop random``."""
    if job.crop == "topleft":
        return 0, 0
    max_x, max_y = crop_range(bg_shape, width, height)
    rng = rng_for(job.seed, "crop", name)
    return int(rng.integers(0, max_x + 1)), int(rng.integers(0, max_y + 1))


def make_composite(job: Job, fg: Foreground, prepared: PreparedForeground, alpha: np.ndarray,
                   c: Composite) -> Outcome:
    bg_path = job.bg_root / c.bg_name
    try:
        probe_image(bg_path)  # catches truncated JPEGs, which OpenCV would decode half-grey
        bg = read_rgb(bg_path)
    except MatteError as exc:
        return Outcome(c.name, error=f"{exc} (background of {c.name})")
    upscaled = bg.shape[1] < fg.width or bg.shape[0] < fg.height
    offset = crop_offset(job, c.name, bg.shape, fg.width, fg.height)
    bg = fit_background(bg, fg.width, fg.height, offset, job.resize)
    clean_bg = bg
    if job.plates and job.plate_spec.shadow:
        bg = cast_shadow(bg, alpha, rng_for(job.seed, "shadow", c.name))
    paths = composite_outputs(c.name, job.trimaps, job.plates)
    level = job.png_level
    write_image(job.out / paths["bg_path"], bg, png_compression=level)
    if job.trimaps:
        trimap = random_trimap(alpha, rng_for(job.seed, "trimap", c.name), job.trimap_spec)
        write_image(job.out / paths["trimap_path"], trimap, png_compression=level)
    if job.plates:
        plate = make_plate(clean_bg, rng_for(job.seed, "plate", c.name), job.plate_spec)
        write_image(job.out / paths["plate_path"], plate, png_compression=level)
    write_image(job.out / paths["merged_path"], prepared.over(bg), png_compression=level)
    return Outcome(c.name, upscaled=upscaled)


def run_task(job: Job, fg: Foreground, composites: list[Composite]) -> list[Outcome]:
    """Decode the foreground and alpha once, then make each composite of the task."""
    try:
        rgb, alpha = read_rgb(fg.fg_path), read_alpha(fg.alpha_path)
        if rgb.shape[:2] != alpha.shape:
            raise MatteError(f"{fg.alpha_path}: alpha size differs from its foreground {fg.fg_path.name}")
        ensure_foreground_files(job, fg, rgb, alpha)
    except MatteError as exc:
        return [Outcome(c.name, error=str(exc)) for c in composites]
    prepared = PreparedForeground(rgb, alpha, job.blend)
    return [make_composite(job, fg, prepared, alpha, c) for c in composites]
