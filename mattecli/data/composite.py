"""Compositing, in one place: the published Composition-1k convention and a float form.

The convention (Adobe's ``Composition_code.py`` as vectorised by mmagic's
``preprocess_comp1k_dataset.py``): scale the background up with OpenCV bicubic only when
it is smaller than the foreground in either side, crop it to the foreground size, and blend
``alpha*fg + (1-alpha)*bg`` in float32 with ``alpha = a/255``, truncated (not rounded) to
uint8.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch


def upscale_background(bg: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale ``bg`` up (bicubic, keeping its aspect) only if it is smaller than width x height."""
    bh, bw = bg.shape[:2]
    if bw >= width and bh >= height:
        return bg
    ratio = max(width / bw, height / bh)
    new_size = (math.ceil(bw * ratio), math.ceil(bh * ratio))
    return cv2.resize(bg, new_size, interpolation=cv2.INTER_CUBIC)


def fit_background(bg: np.ndarray, width: int, height: int, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Upscale if needed, then crop width x height at ``offset`` = (x, y); (0, 0) is the convention."""
    bg = upscale_background(bg, width, height)
    x, y = offset
    bh, bw = bg.shape[:2]
    if not (0 <= x <= bw - width and 0 <= y <= bh - height):
        raise ValueError(f"crop offset {offset} outside a {bw}x{bh} background")
    return np.ascontiguousarray(bg[y:y + height, x:x + width])


def crop_range(bg_shape: tuple[int, ...], width: int, height: int) -> tuple[int, int]:
    """How far a width x height crop can move inside the (upscaled) background: (max x, max y)."""
    bh, bw = bg_shape[:2]
    if bw < width or bh < height:
        ratio = max(width / bw, height / bh)
        bw, bh = math.ceil(bw * ratio), math.ceil(bh * ratio)
    return bw - width, bh - height


def composite_uint8(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """The published blend: float32, alpha = a/255, truncated to uint8. All inputs uint8."""
    a = alpha.astype(np.float32)[:, :, None] / np.float32(255.0)
    comp = fg.astype(np.float32) * a + bg.astype(np.float32) * (np.float32(1.0) - a)
    return comp.astype(np.uint8)


def composite(fg: torch.Tensor, alpha: torch.Tensor, bg: torch.Tensor) -> torch.Tensor:
    """Float compositing ``alpha*fg + (1-alpha)*bg`` for tensors (losses, on-the-fly data)."""
    return alpha * fg + (1.0 - alpha) * bg


def composite_array(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """Float compositing for NumPy arrays in [0, 1]; alpha HxW or HxWx1."""
    if alpha.ndim == 2:
        alpha = alpha[:, :, None]
    return alpha * fg + (1.0 - alpha) * bg
