"""Pictures for click matting: an uncertainty heat map over the image, clicks and refined patches.

Used in the contact sheet of ``eval --simulate-clicks`` and by the click benchmark, so a user
sees where the network is unsure (where another click, or refinement, would help).
"""
from __future__ import annotations

from typing import Iterable, Sequence

import cv2
import numpy as np

FG_CLICK = (40, 220, 40)
BG_CLICK = (230, 40, 40)
PATCH_COLOUR = (40, 230, 230)


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8:
        image = np.clip(image.astype(np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else np.ascontiguousarray(image[:, :, :3])


def uncertainty_overlay(image: np.ndarray, sigma: np.ndarray, opacity: float = 0.6,
                        scale: float | None = None) -> np.ndarray:
    """uint8 RGB: the image with sigma as an inferno heat map blended over it.

    Sigma is divided by ``scale`` (default: its 99th percentile, so one hot pixel does not
    wash the map out) and clipped to [0, 1]; the blend weight is ``opacity * normalised
    sigma``, so certain pixels show the image unchanged.
    """
    rgb = _rgb(image).astype(np.float32)
    s = np.asarray(sigma, np.float32)
    scale = float(np.percentile(s, 99)) if scale is None else float(scale)
    norm = np.clip(s / scale, 0.0, 1.0) if scale > 0 else np.zeros_like(s)
    heat = cv2.applyColorMap(np.round(norm * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)[:, :, ::-1]
    w = (opacity * norm)[:, :, None]
    return np.clip(rgb * (1.0 - w) + heat.astype(np.float32) * w + 0.5, 0, 255).astype(np.uint8)


def draw_boxes(image: np.ndarray, boxes: Iterable[Sequence[int]], colour=PATCH_COLOUR) -> np.ndarray:
    """A copy with each (y0, x0, y1, x1) box (end-exclusive) outlined."""
    out = _rgb(image).copy()
    for y0, x0, y1, x1 in boxes:
        cv2.rectangle(out, (int(x0), int(y0)), (int(x1) - 1, int(y1) - 1), colour, 1)
    return out


def draw_clicks(image: np.ndarray, clicks: Iterable, radius: float = 4.0) -> np.ndarray:
    """A copy with each click (``x``, ``y``, ``positive``) as a filled dot: green fg, red bg."""
    out = _rgb(image).copy()
    r = max(2, int(round(radius)))
    for c in clicks:
        centre = (int(round(c.x)), int(round(c.y)))
        cv2.circle(out, centre, r, FG_CLICK if c.positive else BG_CLICK, -1, cv2.LINE_AA)
        cv2.circle(out, centre, r, (255, 255, 255), 1, cv2.LINE_AA)
    return out
