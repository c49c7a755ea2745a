"""Training and validation samples for click matting, with a simulated user.

Training, per sample (deterministic in (seed, epoch, index) through ``rng_for``): a new random
background, composited on the fly; a square crop (one of ``crop_sizes``) centred on a random
transition pixel (0 < alpha < 1), scaled up first when the image is smaller; resized to
``input_size``; a random horizontal flip. Then the simulated user (the paper: m ~ Geometric(1/6)
clicks of radius 15; the placement rules are ours, docs/click.md):

- m ~ Geometric(p) on {1, 2, ...} as the paper states (mean 1/p = 6), clipped at
  ``max_clicks`` (:func:`mattecli.data.clicks.geometric_count`: the tail beyond the cap lands on
  it, every smaller count keeps its probability; 0 = no cap);
- each click is foreground with probability ``fg_prob``, background otherwise (the paper
  forces no label on the first click);
- with ``whole_image_scales`` = (lo, hi) the crop is replaced by the whole composite, its
  longer side brought to ``input_size`` times a factor in [lo, hi], cut or reflect-padded to
  the square (:func:`whole_image_square`): what the global pass sees when ``global_side`` =
  ``input_size`` (click-quick; docs/train.md);
- foreground clicks land on a uniformly random opaque pixel (alpha = 1), background clicks
  on a clear one (alpha = 0); a click whose region is empty in the crop is left out;
- the disks are drawn on the network's input (after the resize), ``radius`` network pixels:
  the length :func:`mattecli.data.clicks.radius_for_network` keeps at inference;
- with probability ``distractor_prob`` (ours, 0 = off), when at least one click is foreground,
  **another subject** of the source is composited into the background, under the clicked one
  (:func:`distractor_layer`): the target alpha stays the clicked subject's alone, so only the
  click map tells the network which of the two subjects to cut out (on single-subject
  composites the image alone nearly decides the matte, and a network learns to ignore the
  clicks; docs/train.md). Its background clicks may land on the distractor, as on any clear
  pixel.

``seed`` in each sample (an int64) seeds the error-driven extra clicks the family adds in
``losses`` (RITM-style), so they too are reproducible.

Validation: the dataset's fixed composites, whole images, and the deterministic pair of
clicks the evaluation protocol starts with: the deepest foreground point, then the deepest
background point; the radius in network pixels as at inference
(:func:`mattecli.data.clicks.radius_for_network` at the global pass's scale).
Every validation pixel is scored (the trimap given to the engine is all unknown).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from mattecli.data.clicks import Click, click_maps, distance_inside, geometric_count, network_scale, radius_for_network
from mattecli.data.composite import composite, composite_uint8, fit_background
from mattecli.data.sources import (MattingSource, SourceDataset, crop_around, fixed_background, image_tensor,
                                   plane_tensor, random_background, read_merged, read_pair, resize_to)
from mattecli.data.trimap import UNKNOWN
from mattecli.io.images import read_rgb
from mattecli.seeding import derive_seed, rng_for


def simulate_clicks(alpha: np.ndarray, rng: np.random.Generator, p: float = 1 / 6, max_clicks: int = 30,
                    fg_prob: float = 0.5) -> list[Click]:
    """The training-time user on a float alpha in [0, 1] (see the module docstring)."""
    m = geometric_count(rng, p, max_clicks)
    opaque = np.argwhere(alpha >= 1.0)
    clear = np.argwhere(alpha <= 0.0)
    clicks = []
    for _ in range(m):
        positive = bool(rng.random() < fg_prob)
        pool = opaque if positive else clear
        if len(pool) == 0:
            continue
        y, x = pool[int(rng.integers(len(pool)))]
        clicks.append(Click(float(x), float(y), positive))
    return clicks


def whole_image_square(arrays: tuple[np.ndarray, ...], out: int, scales: Sequence[float],
                       rng: np.random.Generator) -> list[np.ndarray]:
    """The whole image (every array the same HxW) scaled so its longer side is ``out`` times a
    factor drawn uniformly in ``scales`` (lo, hi), then cut (random window) or reflect-padded
    (random offset) to ``out`` x ``out``: the view the global pass has of a whole image whose
    longer side it brings to ``global_side`` = ``out``, with the subject's scale jittered."""
    h, w = arrays[0].shape[:2]
    lo, hi = float(scales[0]), float(scales[-1])
    k = out / max(h, w) * float(rng.uniform(lo, hi))
    nh, nw = max(1, round(h * k)), max(1, round(w * k))
    placed = []
    offsets = []
    for side, new in ((h, nh), (w, nw)):
        if new >= out:
            offsets.append((int(rng.integers(new - out + 1)), 0))
        else:
            offsets.append((0, int(rng.integers(out - new + 1))))
    (cut_y, pad_y), (cut_x, pad_x) = offsets
    for arr in arrays:
        a = resize_to(arr, nw, nh)[cut_y:cut_y + out, cut_x:cut_x + out]
        pads = ((pad_y, out - a.shape[0] - pad_y), (pad_x, out - a.shape[1] - pad_x)) + ((0, 0),) * (a.ndim - 2)
        placed.append(np.pad(a, pads, mode="reflect") if any(p for pair in pads for p in pair) else a)
    return placed


def distractor_layer(fg: np.ndarray, alpha: np.ndarray, scale: float, target: np.ndarray,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
    """Another subject as a layer of the target's size: (fg HxWx3 uint8, alpha HxW uint8), or None.

    The subject (``fg``, uint8 ``alpha``) is cut to its alpha's bounding box, resized by
    ``scale`` and centred on a uniformly random clear pixel (alpha = 0) of ``target`` (the
    clicked subject's float alpha), cut at the frame's border. Composited under the target,
    it is part of the background: the target alpha is unchanged. None when the target has no
    clear pixel or the subject is empty."""
    h, w = target.shape
    ys, xs = np.nonzero(alpha)
    clear = np.argwhere(target <= 0.0)
    if len(ys) == 0 or len(clear) == 0:
        return None
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    bh, bw = max(1, round((y1 - y0) * scale)), max(1, round((x1 - x0) * scale))
    sub_fg, sub_alpha = resize_to(fg[y0:y1, x0:x1], bw, bh), resize_to(alpha[y0:y1, x0:x1], bw, bh)
    cy, cx = (int(v) for v in clear[int(rng.integers(len(clear)))])
    top, left = cy - bh // 2, cx - bw // 2
    fy0, fx0, fy1, fx1 = max(top, 0), max(left, 0), min(top + bh, h), min(left + bw, w)
    layer_fg, layer_alpha = np.zeros((h, w, 3), np.uint8), np.zeros((h, w), np.uint8)
    layer_fg[fy0:fy1, fx0:fx1] = sub_fg[fy0 - top:fy1 - top, fx0 - left:fx1 - left]
    layer_alpha[fy0:fy1, fx0:fx1] = sub_alpha[fy0 - top:fy1 - top, fx0 - left:fx1 - left]
    return layer_fg, layer_alpha


def protocol_start(alpha: np.ndarray) -> list[Click]:
    """The deepest foreground point (fg click), then the deepest background point (bg click)."""
    clicks = []
    for mask, positive in ((alpha >= 0.5, True), (alpha < 0.5, False)):
        if mask.any():
            depth = distance_inside(mask)
            y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
            clicks.append(Click(float(x), float(y), positive))
    return clicks


class ClickTrainDataset(SourceDataset):
    def __init__(self, source: MattingSource, seed: int = 0, crop_sizes: Sequence[int] = (320, 480, 640),
                 input_size: int = 320, flip: bool = True, radius: float = 15.0, geometric_p: float = 1 / 6,
                 max_clicks: int = 30, fg_prob: float = 0.5, whole_image_scales: Sequence[float] = (),
                 distractor_prob: float = 0.0) -> None:
        self.source = source
        self.distractor_prob = float(distractor_prob)
        self.whole_image_scales = tuple(float(v) for v in whole_image_scales)
        self.seed = int(seed)
        self.crop_sizes = tuple(int(c) for c in crop_sizes)
        self.input_size = int(input_size)
        self.flip = flip
        self.radius = float(radius)
        self.geometric_p = float(geometric_p)
        self.max_clicks = int(max_clicks)
        self.fg_prob = float(fg_prob)
        self.epoch = 0

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = rng_for(self.seed, "click-train", self.epoch, index)
        fg, alpha = read_pair(self.source.samples[index])
        h, w = alpha.shape
        bg = random_background(self.source.backgrounds, w, h, rng)
        out = self.input_size
        if self.whole_image_scales:
            fg, bg, alpha = whole_image_square((fg, bg, alpha), out, self.whole_image_scales, rng)
            scale = None  # the distractor's scale is drawn as the target's
        else:
            size = self.crop_sizes[int(rng.integers(len(self.crop_sizes)))]
            scale = out / size  # network pixels per source pixel: the distractor is shown at it too
            if h < size or w < size:
                ratio = max(size / h, size / w)
                w, h = max(math.ceil(w * ratio), size), max(math.ceil(h * ratio), size)
                fg, bg, alpha = resize_to(fg, w, h), resize_to(bg, w, h), resize_to(alpha, w, h)
                scale *= ratio
            top, left = crop_around((alpha > 0) & (alpha < 255), size, rng)
            window = (slice(top, top + size), slice(left, left + size))
            fg, bg, alpha = (resize_to(fg[window], out, out), resize_to(bg[window], out, out),
                             resize_to(alpha[window], out, out))
        if self.flip and rng.random() < 0.5:
            fg, bg, alpha = fg[:, ::-1], bg[:, ::-1], alpha[:, ::-1]
        alpha_f = alpha.astype(np.float32) / 255.0
        clicks = simulate_clicks(alpha_f, rng, self.geometric_p, self.max_clicks, self.fg_prob)
        maps = click_maps(clicks, out, out, self.radius)
        fg_t, bg_t = image_tensor(fg), image_tensor(bg)
        if self.distractor_prob > 0 and rng.random() < self.distractor_prob and len(self.source.samples) > 1 \
                and any(c.positive for c in clicks):  # without a foreground click either subject could be meant
            layer = self._distractor(index, scale, alpha_f, rng)
            if layer is not None:
                bg_t = composite(image_tensor(layer[0]), torch.from_numpy(layer[1].astype(np.float32) / 255.0)[None],
                                 bg_t)
        alpha_t = torch.from_numpy(np.ascontiguousarray(alpha_f))[None]
        return {"image": composite(fg_t, alpha_t, bg_t), "alpha": alpha_t, "clicks": torch.from_numpy(maps),
                "seed": torch.tensor(derive_seed(self.seed, "click-extra", self.epoch, index), dtype=torch.int64),
                "radius": torch.tensor(self.radius, dtype=torch.float32)}

    def _distractor(self, index: int, scale: float | None, target: np.ndarray,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
        """Another sample's subject placed beside the target (:func:`distractor_layer`); with whole
        images its scale is drawn as the target's (longer side to ``input_size`` times a factor in
        ``whole_image_scales``)."""
        other = int(rng.integers(len(self.source.samples) - 1))
        fg, alpha = read_pair(self.source.samples[other + (other >= index)])
        if scale is None:
            lo, hi = self.whole_image_scales[0], self.whole_image_scales[-1]
            scale = self.input_size / max(alpha.shape) * float(rng.uniform(lo, hi))
        return distractor_layer(fg, alpha, scale, target, rng)


class ClickValDataset(SourceDataset):
    """Fixed composites, whole images, the protocol's first two clicks; every pixel scored."""

    def __init__(self, source: MattingSource, seed: int = 0, radius: float = 15.0, global_side: int = 1024) -> None:
        self.source = source
        self.seed = int(seed)
        self.radius = float(radius)
        self.global_side = int(global_side)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = self.source.samples[index]
        fg, alpha = read_pair(sample)
        h, w = alpha.shape
        merged = read_merged(sample, w, h)
        if merged is None:
            bg = read_rgb(fixed_background(self.source, sample, self.seed, "click-val-bg"))
            merged = composite_uint8(fg, alpha, fit_background(bg, w, h))
        alpha_f = alpha.astype(np.float32) / 255.0
        radius = radius_for_network(self.radius, network_scale(h, w, self.global_side))
        maps = click_maps(protocol_start(alpha_f), h, w, radius)
        return {"image": image_tensor(merged), "alpha": torch.from_numpy(alpha_f)[None],
                "clicks": torch.from_numpy(maps), "trimap": plane_tensor(np.full((h, w), UNKNOWN, np.uint8))}
