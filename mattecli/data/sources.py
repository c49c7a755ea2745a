"""Matting training sources shared by every family: find, check, read and crop fg/alpha pairs.

A source is a ``mattecli compose`` folder (``manifest.json``: fg, alpha, bg per composite),
or a folder with ``fg/`` and ``alpha/`` (same file stems) plus a background folder (``bg/``
inside it, or one given separately). Each family's ``data.py`` builds its own samples on it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from mattecli.data.composite import crop_range, fit_background
from mattecli.data.manifest import MANIFEST_NAME, read_manifest, resolve
from mattecli.data.trimap import TrimapSpec, normalise_trimap, random_trimap
from mattecli.errors import BadInput
from mattecli.io.images import list_images, probe_image, read_alpha, read_rgb
from mattecli.seeding import rng_for


@dataclass(frozen=True)
class MattingSample:
    """One foreground with its matte and, when the dataset fixes them, its composite parts."""

    name: str
    fg: Path
    alpha: Path
    bg: Path | None = None
    merged: Path | None = None
    trimap: Path | None = None


@dataclass(frozen=True)
class MattingSource:
    samples: list[MattingSample]
    backgrounds: list[Path]


def find_samples(data_dir: str | os.PathLike, backgrounds: str | os.PathLike | None = None) -> MattingSource:
    """Samples and the background pool of a compose folder or an fg/alpha(/bg) folder."""
    root = Path(data_dir)
    if (root / MANIFEST_NAME).is_file():
        samples = [
            MattingSample(r.name, resolve(root, r.fg_path), resolve(root, r.alpha_path), resolve(root, r.bg_path),
                          resolve(root, r.merged_path), resolve(root, r.trimap_path))
            for r in read_manifest(root)
        ]
        pool = list(dict.fromkeys(s.bg for s in samples if s.bg is not None))
    elif (root / "fg").is_dir() and (root / "alpha").is_dir():
        alphas = {p.relative_to(root / "alpha").with_suffix("").as_posix(): p for p in list_images(root / "alpha")}
        samples = []
        for fg in list_images(root / "fg"):
            key = fg.relative_to(root / "fg").with_suffix("").as_posix()
            if key not in alphas:
                raise BadInput(fg, f"no matching alpha in {root / 'alpha'}")
            samples.append(MattingSample(key, fg, alphas[key]))
        pool = []
        if backgrounds is None and (root / "bg").is_dir():
            backgrounds = root / "bg"
    else:
        raise BadInput(root, f"neither a compose dataset ({MANIFEST_NAME}) nor a folder with fg/ and alpha/")
    if backgrounds is not None:
        pool = list_images(backgrounds)
    if not samples:
        raise BadInput(root, "no samples found")
    if not pool:
        raise BadInput(backgrounds or root, "no background images to composite on")
    return MattingSource(samples, pool)


def open_source(data_dir: str | os.PathLike, backgrounds: str | os.PathLike | None = None,
                check: bool = True) -> MattingSource:
    """:func:`find_samples`, then (``check``) :func:`check_files` before training starts."""
    source = find_samples(data_dir, backgrounds)
    if check:
        check_files(source)
    return source


def check_files(source: MattingSource) -> None:
    """Header-only check of every file before training starts: readable, not truncated,
    foreground and alpha of equal size. Raises on the first problem, naming the file."""
    for s in source.samples:
        fg, alpha = probe_image(s.fg), probe_image(s.alpha)
        if (fg.width, fg.height) != (alpha.width, alpha.height):
            raise BadInput(s.alpha, f"alpha is {alpha.width}x{alpha.height}, its foreground {s.fg.name} "
                                    f"is {fg.width}x{fg.height}")
        for extra in (s.merged, s.trimap):
            if extra is not None:
                info = probe_image(extra)
                if (info.width, info.height) != (fg.width, fg.height):
                    raise BadInput(extra, f"is {info.width}x{info.height}, its foreground is {fg.width}x{fg.height}")
    for bg in source.backgrounds:
        probe_image(bg)


def crop_around(unknown: np.ndarray, size: int, rng: np.random.Generator) -> tuple[int, int]:
    """Top-left of a ``size`` square centred on a random unknown pixel, kept inside the image
    (mmagic's ``CropAroundUnknown``); a random centre when nothing is unknown."""
    h, w = unknown.shape
    ys, xs = np.nonzero(unknown)
    if len(ys):
        i = int(rng.integers(len(ys)))
        cy, cx = int(ys[i]), int(xs[i])
    else:
        cy, cx = int(rng.integers(h)), int(rng.integers(w))
    top = min(max(cy - size // 2, 0), h - size)
    left = min(max(cx - size // 2, 0), w - size)
    return top, left


def resize_to(arr: np.ndarray, width: int, height: int, nearest: bool = False) -> np.ndarray:
    if arr.shape[1] == width and arr.shape[0] == height:
        return arr
    return cv2.resize(arr, (width, height), interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR)


def image_tensor(arr: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> 3xHxW float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).to(torch.float32) / 255.0


def plane_tensor(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr))[None]


def read_pair(sample: MattingSample) -> tuple[np.ndarray, np.ndarray]:
    fg, alpha = read_rgb(sample.fg), read_alpha(sample.alpha)
    if fg.shape[:2] != alpha.shape:
        raise BadInput(sample.alpha, f"alpha is {alpha.shape[1]}x{alpha.shape[0]}, "
                                     f"its foreground is {fg.shape[1]}x{fg.shape[0]}")
    return fg, alpha


def place_background(bg: np.ndarray, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """``bg`` fitted to width x height at a random place (when it is larger than that):
    draws x, then y, from ``rng``."""
    max_x, max_y = crop_range(bg.shape, width, height)
    return fit_background(bg, width, height, (int(rng.integers(max_x + 1)), int(rng.integers(max_y + 1))))


def random_background(pool: Sequence[Path], width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A new training background: one from ``pool`` picked with ``rng``, read and fitted to
    width x height at a random place (:func:`place_background`); three draws from ``rng``."""
    return place_background(read_rgb(pool[int(rng.integers(len(pool)))]), width, height, rng)


def fixed_background(source: MattingSource, sample: MattingSample, seed: int, stream: str) -> Path:
    """A validation sample's background: its own when the dataset fixes one, otherwise one from
    the pool chosen by ``rng_for(seed, stream, sample.name)``, the same on every run."""
    if sample.bg is not None:
        return sample.bg
    pool = source.backgrounds
    return pool[int(rng_for(seed, stream, sample.name).integers(len(pool)))]


def read_merged(sample: MattingSample, width: int, height: int) -> np.ndarray | None:
    """The dataset's fixed composite of ``sample`` (checked to be width x height), or None
    when it has none."""
    if sample.merged is None:
        return None
    merged = read_rgb(sample.merged)
    if merged.shape[:2] != (height, width):
        raise BadInput(sample.merged, f"is {merged.shape[1]}x{merged.shape[0]}, its alpha is {width}x{height}")
    return merged


def fixed_trimap(sample: MattingSample, alpha: np.ndarray, seed: int, stream: str, spec: TrimapSpec) -> np.ndarray:
    """A validation sample's trimap: the dataset's trimap file (checked against ``alpha``'s
    size), otherwise a random trimap from ``rng_for(seed, stream, sample.name)``."""
    h, w = alpha.shape
    if sample.trimap is not None:
        trimap, _ = normalise_trimap(read_alpha(sample.trimap))
        if trimap.shape != (h, w):
            raise BadInput(sample.trimap, f"is {trimap.shape[1]}x{trimap.shape[0]}, its alpha is {w}x{h}")
        return trimap
    return random_trimap(alpha, rng_for(seed, stream, sample.name), spec)


class SourceDataset(Dataset):
    """A dataset with one item per sample of ``self.source``; the engine calls
    :meth:`set_epoch` before each epoch, so that training draws can depend on it."""

    source: MattingSource
    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.source.samples)
