"""Training and validation samples for trimap-based matting (Deep Image Matting's pipeline).

Training, per sample, as the paper describes it and its reproductions implement it:
draw a background from the dataset's pool (a new one every epoch), composite on the fly,
make a random trimap from the ground truth (:func:`mattecli.data.trimap.random_trimap`,
the generator ``compose --trimaps`` uses), crop 320, 480 or 640 pixels square centred on a
random unknown pixel, resize to 320, flip at random.

Every random choice comes from ``rng_for(seed, "dim-train", epoch, index)``, so a sample
depends only on (seed, epoch, index): worker processes give the same samples in any order.

Validation: fixed composites (the dataset's merged images when present), fixed trimaps
(the dataset's trimap files when present, otherwise a seeded random trimap per name), and
whole images or a fixed crop around a seeded unknown pixel.

Sources: a ``mattecli compose`` folder (``manifest.json``: fg, alpha, bg per composite), or
a folder with ``fg/`` and ``alpha/`` (same file stems) plus a background folder (``bg/``
inside it, or one given separately).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from mattecli.data.composite import composite, composite_uint8, crop_range, fit_background
from mattecli.data.manifest import MANIFEST_NAME, read_manifest, resolve
from mattecli.data.trimap import UNKNOWN, TrimapSpec, normalise_trimap, random_trimap
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


def _resize(arr: np.ndarray, width: int, height: int, nearest: bool = False) -> np.ndarray:
    if arr.shape[1] == width and arr.shape[0] == height:
        return arr
    return cv2.resize(arr, (width, height), interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR)


def _image_tensor(arr: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> 3xHxW float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).to(torch.float32) / 255.0


def _plane_tensor(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr))[None]


def _read_pair(sample: MattingSample) -> tuple[np.ndarray, np.ndarray]:
    fg, alpha = read_rgb(sample.fg), read_alpha(sample.alpha)
    if fg.shape[:2] != alpha.shape:
        raise BadInput(sample.alpha, f"alpha is {alpha.shape[1]}x{alpha.shape[0]}, "
                                     f"its foreground is {fg.shape[1]}x{fg.shape[0]}")
    return fg, alpha


class DIMTrainDataset(Dataset):
    """Random on-the-fly composites, crops and trimaps; deterministic in (seed, epoch, index)."""

    def __init__(self, source: MattingSource, seed: int = 0, crop_sizes: Sequence[int] = (320, 480, 640),
                 input_size: int = 320, trimap_spec: TrimapSpec = TrimapSpec(), flip: bool = True) -> None:
        if not crop_sizes or min(crop_sizes) < 1 or input_size < 1:
            raise ValueError("crop sizes and input size must be positive")
        self.source = source
        self.seed = int(seed)
        self.crop_sizes = tuple(int(c) for c in crop_sizes)
        self.input_size = int(input_size)
        self.trimap_spec = trimap_spec
        self.flip = flip
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.source.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = rng_for(self.seed, "dim-train", self.epoch, index)
        fg, alpha = _read_pair(self.source.samples[index])
        h, w = alpha.shape
        # A new background each epoch, at a random place when it is larger than the foreground.
        bg_path = self.source.backgrounds[int(rng.integers(len(self.source.backgrounds)))]
        bg = read_rgb(bg_path)
        max_x, max_y = crop_range(bg.shape, w, h)
        bg = fit_background(bg, w, h, (int(rng.integers(max_x + 1)), int(rng.integers(max_y + 1))))
        # The trimap at the sample's own resolution, as the test trimaps are made.
        trimap = random_trimap(alpha, rng, self.trimap_spec)
        size = self.crop_sizes[int(rng.integers(len(self.crop_sizes)))]
        if h < size or w < size:  # too small for the crop: scale up (mmagic's CropAroundUnknown)
            ratio = max(size / h, size / w)
            w, h = max(math.ceil(w * ratio), size), max(math.ceil(h * ratio), size)
            fg, bg, alpha = _resize(fg, w, h), _resize(bg, w, h), _resize(alpha, w, h)
            trimap = _resize(trimap, w, h, nearest=True)
        top, left = crop_around(trimap == UNKNOWN, size, rng)
        window = (slice(top, top + size), slice(left, left + size))
        out = self.input_size
        fg, bg = _resize(fg[window], out, out), _resize(bg[window], out, out)
        alpha = _resize(alpha[window], out, out)
        trimap = _resize(trimap[window], out, out, nearest=True)
        if self.flip and rng.random() < 0.5:
            fg, bg, alpha, trimap = fg[:, ::-1], bg[:, ::-1], alpha[:, ::-1], trimap[:, ::-1]
        fg_t, bg_t = _image_tensor(fg), _image_tensor(bg)
        alpha_t = _plane_tensor(alpha).to(torch.float32) / 255.0
        return {"image": composite(fg_t, alpha_t, bg_t), "alpha": alpha_t, "fg": fg_t, "bg": bg_t,
                "trimap": _plane_tensor(trimap)}


class DIMValDataset(Dataset):
    """Fixed validation samples: fixed composites, trimaps and (optional) crops."""

    def __init__(self, source: MattingSource, seed: int = 0, crop: int | None = None,
                 trimap_spec: TrimapSpec = TrimapSpec()) -> None:
        self.source = source
        self.seed = int(seed)
        self.crop = int(crop) if crop else None
        self.trimap_spec = trimap_spec

    def __len__(self) -> int:
        return len(self.source.samples)

    def _background(self, sample: MattingSample) -> Path:
        if sample.bg is not None:
            return sample.bg
        pool = self.source.backgrounds
        return pool[int(rng_for(self.seed, "dim-val-bg", sample.name).integers(len(pool)))]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = self.source.samples[index]
        fg, alpha = _read_pair(sample)
        h, w = alpha.shape
        bg = fit_background(read_rgb(self._background(sample)), w, h)  # top-left, the published convention
        if sample.merged is not None:
            merged = read_rgb(sample.merged)
            if merged.shape[:2] != (h, w):
                raise BadInput(sample.merged, f"is {merged.shape[1]}x{merged.shape[0]}, its alpha is {w}x{h}")
        else:
            merged = composite_uint8(fg, alpha, bg)
        if sample.trimap is not None:
            trimap, _ = normalise_trimap(read_alpha(sample.trimap))
            if trimap.shape != (h, w):
                raise BadInput(sample.trimap, f"is {trimap.shape[1]}x{trimap.shape[0]}, its alpha is {w}x{h}")
        else:
            trimap = random_trimap(alpha, rng_for(self.seed, "dim-val-trimap", sample.name), self.trimap_spec)
        if self.crop and h >= self.crop and w >= self.crop:
            top, left = crop_around(trimap == UNKNOWN, self.crop, rng_for(self.seed, "dim-val-crop", sample.name))
            window = (slice(top, top + self.crop), slice(left, left + self.crop))
            fg, bg, merged, alpha, trimap = fg[window], bg[window], merged[window], alpha[window], trimap[window]
        return {"image": _image_tensor(merged), "alpha": _plane_tensor(alpha).to(torch.float32) / 255.0,
                "fg": _image_tensor(fg), "bg": _image_tensor(bg), "trimap": _plane_tensor(trimap)}
