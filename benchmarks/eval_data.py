"""Seeded synthetic evaluation sets: realistic ground-truth mattes, trimaps and predictions.

Ground truths come from the procedural sample foregrounds (solid body, holes, sub-pixel
strands, motion blur, a veil), placed on a canvas with a random shift and flip; trimaps
follow the Composition-1k recipe (mattecli.data.trimap); predictions are the ground truth
with the errors matting networks make: a blurred edge, low-amplitude noise, a few wrong
blobs and a small offset, quantised to 8 bits. Same seed, same bytes.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from mattecli.data.samples import generate_foreground
from mattecli.data.trimap import random_trimap
from mattecli.io.images import write_image
from mattecli.seeding import rng_for


def ground_truth_pool(seed: int, count: int, width: int, height: int) -> list[np.ndarray]:
    """``count`` distinct sample alphas of about 70% of the canvas (generated once, reused)."""
    return [generate_foreground(seed, f"eval_fg_{i}", int(width * 0.7) // 2 * 2, int(height * 0.8) // 2 * 2)[1]
            for i in range(count)]


def make_triple(pool: list[np.ndarray], seed: int, index: int, width: int, height: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prediction, ground truth, trimap), uint8 HxW, for image ``index``."""
    rng = rng_for(seed, "eval", index)
    small = pool[int(rng.integers(len(pool)))]
    if rng.random() < 0.5:
        small = small[:, ::-1]
    gt = np.zeros((height, width), np.uint8)
    y = int(rng.integers(0, height - small.shape[0] + 1))
    x = int(rng.integers(0, width - small.shape[1] + 1))
    gt[y:y + small.shape[0], x:x + small.shape[1]] = small
    trimap = random_trimap(gt, rng)

    pred = gt.astype(np.float32)
    pred = cv2.GaussianBlur(pred, (0, 0), float(rng.uniform(0.5, 2.0)))
    shift = np.float32([[1, 0, rng.uniform(-1.5, 1.5)], [0, 1, rng.uniform(-1.5, 1.5)]])
    pred = cv2.warpAffine(pred, shift, (width, height), borderMode=cv2.BORDER_REPLICATE)
    pred += cv2.GaussianBlur(rng.normal(0, 12, (height, width)).astype(np.float32), (0, 0), 1.5)
    for _ in range(int(rng.integers(2, 6))):  # wrong blobs: holes in the body, spill into the background
        blob = np.zeros((height, width), np.uint8)
        cv2.circle(blob, (int(rng.integers(width)), int(rng.integers(height))), int(rng.integers(4, 30)), 255, -1)
        blob = cv2.GaussianBlur(blob.astype(np.float32), (0, 0), 3) / 255.0
        pred = pred * (1 - blob) + blob * float(rng.uniform(0, 255))
    pred = np.clip(np.round(pred), 0, 255).astype(np.uint8)
    return pred, gt, trimap


def write_eval_set(out: Path, seed: int = 0, count: int = 1000, width: int = 800, height: int = 600,
                   pool_size: int = 8) -> tuple[Path, Path, Path]:
    """Write ``pred/``, ``gt/``, ``trimap/`` PNGs under ``out`` (skipped when already complete)."""
    dirs = tuple(out / d for d in ("pred", "gt", "trimap"))
    marker = out / f"complete_{seed}_{count}_{width}x{height}"
    if marker.exists():
        return dirs
    pool = ground_truth_pool(seed, pool_size, width, height)
    for i in range(count):
        for folder, arr in zip(dirs, make_triple(pool, seed, i, width, height)):
            write_image(folder / f"img_{i:04d}.png", arr)
    marker.touch()
    return dirs
