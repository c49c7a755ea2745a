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
from pathlib import Path
from typing import Sequence

import torch
from torch.utils.data import Dataset

from mattecli.data.composite import composite, composite_uint8, crop_range, fit_background
from mattecli.data.trimap import UNKNOWN, TrimapSpec, normalise_trimap, random_trimap
from mattecli.data.sources import (MattingSample, MattingSource, crop_around, image_tensor, plane_tensor, read_pair,
                                   resize_to)
from mattecli.errors import BadInput
from mattecli.io.images import read_alpha, read_rgb
from mattecli.seeding import rng_for


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
        fg, alpha = read_pair(self.source.samples[index])
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
            fg, bg, alpha = resize_to(fg, w, h), resize_to(bg, w, h), resize_to(alpha, w, h)
            trimap = resize_to(trimap, w, h, nearest=True)
        top, left = crop_around(trimap == UNKNOWN, size, rng)
        window = (slice(top, top + size), slice(left, left + size))
        out = self.input_size
        fg, bg = resize_to(fg[window], out, out), resize_to(bg[window], out, out)
        alpha = resize_to(alpha[window], out, out)
        trimap = resize_to(trimap[window], out, out, nearest=True)
        if self.flip and rng.random() < 0.5:
            fg, bg, alpha, trimap = fg[:, ::-1], bg[:, ::-1], alpha[:, ::-1], trimap[:, ::-1]
        fg_t, bg_t = image_tensor(fg), image_tensor(bg)
        alpha_t = plane_tensor(alpha).to(torch.float32) / 255.0
        return {"image": composite(fg_t, alpha_t, bg_t), "alpha": alpha_t, "fg": fg_t, "bg": bg_t,
                "trimap": plane_tensor(trimap)}


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
        fg, alpha = read_pair(sample)
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
        return {"image": image_tensor(merged), "alpha": plane_tensor(alpha).to(torch.float32) / 255.0,
                "fg": image_tensor(fg), "bg": image_tensor(bg), "trimap": plane_tensor(trimap)}
