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
from typing import Sequence

import torch

from mattecli.data.composite import composite, composite_uint8, fit_background
from mattecli.data.trimap import UNKNOWN, TrimapSpec, random_trimap
from mattecli.data.sources import (MattingSource, SourceDataset, crop_around, fixed_background, fixed_trimap,
                                   image_tensor, plane_tensor, random_background, read_merged, read_pair, resize_to)
from mattecli.io.images import read_rgb
from mattecli.seeding import rng_for


class DIMTrainDataset(SourceDataset):
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

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = rng_for(self.seed, "dim-train", self.epoch, index)
        fg, alpha = read_pair(self.source.samples[index])
        h, w = alpha.shape
        # A new background each epoch, at a random place when it is larger than the foreground.
        bg = random_background(self.source.backgrounds, w, h, rng)
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


class DIMValDataset(SourceDataset):
    """Fixed validation samples: fixed composites, trimaps and (optional) crops."""

    def __init__(self, source: MattingSource, seed: int = 0, crop: int | None = None,
                 trimap_spec: TrimapSpec = TrimapSpec()) -> None:
        self.source = source
        self.seed = int(seed)
        self.crop = int(crop) if crop else None
        self.trimap_spec = trimap_spec

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = self.source.samples[index]
        fg, alpha = read_pair(sample)
        h, w = alpha.shape
        bg = read_rgb(fixed_background(self.source, sample, self.seed, "dim-val-bg"))
        bg = fit_background(bg, w, h)  # top-left, the published convention
        merged = read_merged(sample, w, h)
        if merged is None:
            merged = composite_uint8(fg, alpha, bg)
        trimap = fixed_trimap(sample, alpha, self.seed, "dim-val-trimap", self.trimap_spec)
        if self.crop and h >= self.crop and w >= self.crop:
            top, left = crop_around(trimap == UNKNOWN, self.crop, rng_for(self.seed, "dim-val-crop", sample.name))
            window = (slice(top, top + self.crop), slice(left, left + self.crop))
            fg, bg, merged, alpha, trimap = fg[window], bg[window], merged[window], alpha[window], trimap[window]
        return {"image": image_tensor(merged), "alpha": plane_tensor(alpha).to(torch.float32) / 255.0,
                "fg": image_tensor(fg), "bg": image_tensor(bg), "trimap": plane_tensor(trimap)}
