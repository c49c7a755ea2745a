"""Training and validation samples for SHM: human foregrounds composited on the fly.

Geometry (our choice, so training matches inference; the public ports' T-Nets fail at test
scales they never saw, tsing90 #26). At inference the T-Net sees the whole image resized to
``infer_size`` x ``infer_size`` and the M-Net the full resolution. In training, each
composite is first resized to a square: ``infer_size`` a side for the ``tnet`` stage, or
``full_size`` for ``mnet`` and ``e2e`` (the stand-in for "full resolution"), times a random
scale in ``scale_range`` (lizhengwei1992: 0.75-1.25), the subject padded with transparent pixels
onto a background of the crop's side when the scale shrinks it below the crop (so every drawn
scale is the scale that happens, :func:`scaled_composite_layers`); then:

- ``tnet``: a random ``tnet_crop`` square; target = the trimap the project's generator
  makes from the crop's alpha with ``tnet_trimap_kernel``/``tnet_trimap_iterations``
  (fixed by default, as lizhengwei1992's ``gen_trimap.py``: one kernel size, one iteration);
- ``mnet``: a ``mnet_crop`` square centred on a random unknown pixel (DIM) of a random
  trimap (``trimap_kernel``/``trimap_iterations``, DIM's ranges), given to the M-Net as
  one-hot probabilities (``mnet_input = "trimap"``, the paper); or (``mnet_input = "tnet"``,
  ours) the probabilities a perfect T-Net would hand over at inference
  (:func:`tnet_view_probabilities`: the T-Net's target trimap made at the T-Net's scale,
  through its 1/8 logit grid, upsampled), so the M-Net learns on what it is given;
- ``e2e``: a random ``e2e_crop`` square; the T-Net sees it resized by
  ``infer_size / full_size`` (the scale it had in its own stage), and its target trimap is
  made at that scale.

Every crop is flipped at random. Every random choice comes from ``rng_for(seed, "shm",
stage, epoch, index)``. Validation: whole images, fixed composites (the dataset's merged
images when present).
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from mattecli.data.composite import composite, composite_uint8, fit_background
from mattecli.data.sources import (MattingSource, SourceDataset, crop_around, fixed_background, fixed_trimap,
                                   image_tensor, plane_tensor, random_background, read_merged, read_pair)
from mattecli.data.trimap import UNKNOWN, TrimapSpec, random_trimap
from mattecli.families.shm.classes import CLASSES, UNKNOWN_CLASS, trimap_to_classes
from mattecli.io.images import read_rgb
from mattecli.seeding import rng_for

STAGES = ("tnet", "mnet", "e2e")
#: what the M-Net is given in its pre-training stage (recipe key ``mnet_input``)
MNET_INPUTS = ("trimap", "tnet")
TNET_STRIDE = 8  # the T-Net's logits are at 1/8 of its input (model.TNET_STRIDE; data does not import the model)


def resize(arr: np.ndarray, width: int, height: int, nearest: bool = False) -> np.ndarray:
    """Area averaging when shrinking (what the T-Net's antialiased resize does), linear when growing."""
    if arr.shape[1] == width and arr.shape[0] == height:
        return arr
    if nearest:
        interp = cv2.INTER_NEAREST
    else:
        interp = cv2.INTER_AREA if width < arr.shape[1] and height < arr.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(arr, (width, height), interpolation=interp)


def scaled_composite_layers(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray, base: int, scale: float,
                            crop: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The composite's layers at ``base * scale`` a side, at least ``crop`` a side.

    The subject (fg, alpha) is resized to round(base * scale) square; when that is smaller
    than the crop, it is padded with transparent pixels (alpha 0) to the crop's side at a
    random place, so the subject really is smaller in the frame, and the background is drawn
    at the padded size (a whole photograph, as at inference, never a padded border)."""
    side = max(int(round(base * scale)), 1)
    fg, alpha = resize(fg, side, side), resize(alpha, side, side)
    canvas = max(side, crop)
    bg = resize(bg, canvas, canvas)
    if side < canvas:
        top, left = int(rng.integers(canvas - side + 1)), int(rng.integers(canvas - side + 1))
        pad = ((top, canvas - side - top), (left, canvas - side - left))
        fg = np.pad(fg, pad + ((0, 0),))
        alpha = np.pad(alpha, pad)
    return fg, alpha, bg


def tnet_view_probabilities(alpha: np.ndarray, tnet_side: tuple[int, int], spec: TrimapSpec,
                            rng: np.random.Generator) -> np.ndarray:
    """HxWx3 float32 class probabilities of a perfect T-Net on ``alpha`` (uint8 HxW).

    The T-Net sees the image at ``tnet_side`` (width, height), is trained on the trimap
    ``spec`` makes there, and its logits live on a grid 1/8 of that side, upsampled
    bilinearly to the full size. So: the target trimap at ``tnet_side``, one-hot, averaged onto
    the 1/8 grid and brought back up to ``alpha``'s size. What the M-Net meets at inference
    when the T-Net is right, soft band edges included (a one-hot trimap has none)."""
    h, w = alpha.shape
    tw, th = tnet_side
    target = trimap_to_classes(random_trimap(resize(alpha, tw, th), rng, spec))
    onehot = np.eye(len(CLASSES), dtype=np.float32)[target]
    grid = resize(onehot, max(tw // TNET_STRIDE, 1), max(th // TNET_STRIDE, 1))
    return np.clip(cv2.resize(grid, (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)


class SHMTrainDataset(SourceDataset):
    """On-the-fly composites for one stage; deterministic in (seed, stage, epoch, index)."""

    def __init__(self, source: MattingSource, stage: str, seed: int = 0, infer_size: int = 400,
                 full_size: int = 800, tnet_crop: int = 400, mnet_crop: int = 320, e2e_crop: int = 800,
                 scale_range: tuple[float, float] = (0.75, 1.25), flip: bool = True,
                 trimap_spec: TrimapSpec = TrimapSpec(), tnet_trimap_spec: TrimapSpec = TrimapSpec((10, 10), (1, 1)),
                 mnet_input: str = "trimap") -> None:
        if stage not in STAGES:
            raise ValueError(f"SHM stage must be one of {', '.join(STAGES)}, not {stage!r}")
        if mnet_input not in MNET_INPUTS:
            raise ValueError(f"SHM mnet_input must be one of {', '.join(MNET_INPUTS)}, not {mnet_input!r}")
        self.mnet_input = mnet_input
        self.source, self.stage, self.seed = source, stage, int(seed)
        self.infer_size, self.full_size = int(infer_size), int(full_size)
        self.crop = {"tnet": int(tnet_crop), "mnet": int(mnet_crop), "e2e": int(e2e_crop)}[stage]
        self.base = self.infer_size if stage == "tnet" else self.full_size
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.flip = flip
        self.trimap_spec, self.tnet_trimap_spec = trimap_spec, tnet_trimap_spec
        self.epoch = 0

    @property
    def tnet_crop_size(self) -> int:
        """Side of the T-Net's input (and target) for this stage's crops."""
        if self.stage == "e2e":
            return self.crop * self.infer_size // self.full_size
        return self.crop

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = rng_for(self.seed, "shm", self.stage, self.epoch, index)
        fg, alpha = read_pair(self.source.samples[index])
        h, w = alpha.shape
        bg = random_background(self.source.backgrounds, w, h, rng)
        scale = float(rng.uniform(*self.scale_range))
        fg, alpha, bg = scaled_composite_layers(fg, alpha, bg, self.base, scale, self.crop, rng)
        size = self.crop
        side = alpha.shape[0]
        trimap = probs = None
        if self.stage == "mnet" and self.mnet_input == "tnet":
            t = max(int(round(side * self.infer_size / self.full_size)), 1)
            probs = tnet_view_probabilities(alpha, (t, t), self.tnet_trimap_spec, rng)
            top, left = crop_around(probs[..., UNKNOWN_CLASS] > 0.5, size, rng)
        elif self.stage == "mnet":
            trimap = random_trimap(alpha, rng, self.trimap_spec)
            top, left = crop_around(trimap == UNKNOWN, size, rng)
        else:
            top, left = int(rng.integers(side - size + 1)), int(rng.integers(side - size + 1))
        window = (slice(top, top + size), slice(left, left + size))
        fg, bg, alpha = fg[window], bg[window], alpha[window]
        if trimap is not None:
            trimap = trimap[window]
        if probs is not None:
            probs = probs[window]
        if self.flip and rng.random() < 0.5:
            fg, bg, alpha = fg[:, ::-1], bg[:, ::-1], alpha[:, ::-1]
            trimap = trimap[:, ::-1] if trimap is not None else None
            probs = probs[:, ::-1] if probs is not None else None
        fg_t, bg_t = image_tensor(fg), image_tensor(bg)
        alpha_t = plane_tensor(alpha).to(torch.float32) / 255.0
        item = {"image": composite(fg_t, alpha_t, bg_t)}
        if self.stage in ("mnet", "e2e"):
            item.update(alpha=alpha_t, fg=fg_t, bg=bg_t)
        if probs is not None:
            item["probs"] = torch.from_numpy(np.ascontiguousarray(probs.transpose(2, 0, 1)))
        elif trimap is not None:
            item["trimap"] = plane_tensor(trimap)
        else:
            t = self.tnet_crop_size
            small = resize(np.ascontiguousarray(alpha), t, t)
            target = random_trimap(small, rng, self.tnet_trimap_spec)
            item["classes"] = plane_tensor(trimap_to_classes(target))
        return item


class SHMValDataset(SourceDataset):
    """Whole images, fixed composites and trimaps.

    ``trimap`` is the region the engine's validation scores: the whole image (all unknown)
    for ``tnet`` and ``e2e``, the ground-truth trimap's unknown band for ``mnet`` (which is
    given that trimap); ``gt_trimap`` is the ground-truth trimap itself. With ``mnet_input =
    "tnet"`` the ``mnet`` stage is given ``gt_probs`` (a perfect T-Net's probabilities, as in
    training) and scored on the whole image, as ``e2e``. For ``tnet`` the scored ``alpha`` is
    the T-Net's TARGET trimap (made at ``infer_size`` as in training, levels 0 / 0.5 / 1), so
    validation scores the trimap the T-Net learns, not the alpha: scored against the alpha,
    ``F + 0.5 U`` rewards a T-Net that calls the sparse hair band background.
    """

    def __init__(self, source: MattingSource, stage: str, seed: int = 0,
                 trimap_spec: TrimapSpec = TrimapSpec(), mnet_input: str = "trimap", infer_size: int = 400,
                 tnet_trimap_spec: TrimapSpec = TrimapSpec((10, 10), (1, 1))) -> None:
        self.source, self.stage, self.seed = source, stage, int(seed)
        self.trimap_spec = trimap_spec
        self.tnet_view = stage == "mnet" and mnet_input == "tnet"
        self.tnet_target = stage == "tnet"
        self.infer_size, self.tnet_trimap_spec = int(infer_size), tnet_trimap_spec

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = self.source.samples[index]
        fg, alpha = read_pair(sample)
        h, w = alpha.shape
        bg = read_rgb(fixed_background(self.source, sample, self.seed, "shm-val-bg"))
        bg = fit_background(bg, w, h)
        merged = read_merged(sample, w, h)
        if merged is None:
            merged = composite_uint8(fg, alpha, bg)
        trimap = fixed_trimap(sample, alpha, self.seed, "shm-val-trimap", self.trimap_spec)
        region = trimap if self.stage == "mnet" and not self.tnet_view else np.full_like(trimap, UNKNOWN)
        item = {"image": image_tensor(merged), "alpha": plane_tensor(alpha).to(torch.float32) / 255.0,
                "fg": image_tensor(fg), "bg": image_tensor(bg), "trimap": plane_tensor(region),
                "gt_trimap": plane_tensor(trimap)}
        if self.tnet_target:
            small = resize(alpha, self.infer_size, self.infer_size)
            target = random_trimap(small, rng_for(self.seed, "shm-val-tnet-target", sample.name), self.tnet_trimap_spec)
            target = resize(target, w, h, nearest=True)
            levels = np.where(target == UNKNOWN, 0.5, target / 255.0).astype(np.float32)
            item["alpha"] = torch.from_numpy(levels)[None]
        if self.tnet_view:
            probs = tnet_view_probabilities(alpha, (self.infer_size, self.infer_size), self.tnet_trimap_spec,
                                            rng_for(self.seed, "shm-val-tnet-view", sample.name))
            item["gt_probs"] = torch.from_numpy(np.ascontiguousarray(probs.transpose(2, 0, 1)))
        return item
