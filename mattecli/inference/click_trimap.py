"""Weights-free click matting: clicks and strokes -> segmentation -> trimap -> closed-form matte.

Closed-form matting with a few click disks as its only constraints is too weak (the matte
spreads from the disks; issue 21 measured 7.5x the SAD of the true trimap). What a person's
clicks say is "this object" and "not that", which is a segmentation problem; matting is then
needed only in a band around the segmentation's boundary. So:

1. **Seeds.** Clicks (disks of the click radius) and strokes are drawn into the signed map U
   (:func:`mattecli.data.clicks.signed_click_map`, the one rasterisation every click user
   shares), at a *working resolution* (longer side ``work_side``) so the segmentation costs
   the same on a 4K photo as on the studio's preview.
2. **Segmentation.** OpenCV's GrabCut (Rother et al. 2004: colour GMMs and a graph cut,
   ``cv2.grabCut`` with ``GC_INIT_WITH_MASK``) seeded by U: definite foreground/background on
   the seeds, *probable foreground* in a disk around each foreground seed (radius
   ``prior_fraction`` of the shorter side), *probable background* elsewhere. With foreground
   seeds only, a thin frame at the image border is definite background unless a foreground
   seed lies near it, so one click on a subject gives the subject. Only the foreground
   components that hold a foreground seed are kept (stray look-alike blobs in the background
   are dropped; a person clicks a separate part to add it).
3. **Trimap.** The mask is upsampled (bilinear, threshold 0.5) and pixels within a band of
   its boundary become unknown (128): ``band_work`` working pixels (the segmentation's own
   resolution, so its uncertainty), at least ``band_min`` full-resolution pixels. Seeds stay
   known (255 / 0): what a person marked is never overruled. (Growing the band with the
   density of image edges along the boundary, for hair, was tried and made SAD worse on the
   development sets: closed form then spreads into textured background.)
4. **Matte.** Closed-form matting (:func:`mattecli.inference.closed_form.closed_form_alpha`)
   of the band at full resolution.

With background seeds only there is nothing to cut out; :func:`click_trimap` refuses with one line.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mattecli.data.clicks import DEFAULT_RADIUS, Click, Stroke, scale_guidance, signed_click_map
from mattecli.data.trimap import BACKGROUND, FOREGROUND, UNKNOWN
from mattecli.errors import BadInput


@dataclass(frozen=True)
class ClickTrimapSettings:
    """The method's knobs; defaults chosen on held-out synthetic composites (BENCHMARKS.md)."""

    work_side: int = 400  # longer side of the segmentation
    iterations: int = 4  # GrabCut iterations
    prior_fraction: float = 0.15  # probable-foreground disk around foreground seeds, of the shorter side
    border: int = 2  # definite-background frame (working pixels) when no background seed is given
    band_work: float = 3.0  # unknown half-width in working pixels (the segmentation's own uncertainty)
    band_min: float = 3.0  # ... and in full-resolution pixels at least
    #: probable labels: "voronoi" (nearest seed, the border counting as background), "disk" (the
    #: prior disk only), "auto" (disk when background is marked, else voronoi); see docs/matte.md
    init: str = "auto"
    #: the border frame stays definite background (away from foreground seeds) after background
    #: clicks too: steadier on composites, much worse on photos whose subject touches the border
    frame_always: bool = False


def _to_bgr8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image[:, :, ::-1])
    if image.dtype == np.uint16:
        return np.ascontiguousarray((image[:, :, ::-1] // 257).astype(np.uint8))
    return np.ascontiguousarray(np.clip(image[:, :, ::-1] * 255.0 + 0.5, 0, 255).astype(np.uint8))


def _work_scale(height: int, width: int, work_side: int) -> float:
    return min(1.0, work_side / max(height, width))


def segment(image: np.ndarray, guidance: list, radius: float = DEFAULT_RADIUS,
            settings: ClickTrimapSettings = ClickTrimapSettings(), path: object = "clicks") -> tuple[np.ndarray, float]:
    """The foreground mask at the working resolution (bool hxw) and the working scale."""
    h, w = image.shape[:2]
    signed_click_map(guidance, h, w, radius, path)  # one-line refusal of points outside the image
    s = _work_scale(h, w, settings.work_side)
    ww, wh = max(1, round(w * s)), max(1, round(h * s))
    sx, sy = ww / w, wh / h
    small = cv2.resize(image, (ww, wh), interpolation=cv2.INTER_AREA) if s < 1.0 else image
    seeds = signed_click_map(scale_guidance(guidance, sx, sy, ww, wh), wh, ww, max(1.0, radius * min(sx, sy)))
    fg_seed, bg_seed = seeds > 0, seeds < 0
    if not fg_seed.any():
        raise BadInput(path, "its clicks mark no foreground: left-click (label \"fg\") on the subject at least once")

    mask = np.full((wh, ww), cv2.GC_PR_BGD, np.uint8)
    prior = settings.prior_fraction * min(wh, ww)
    to_fg = cv2.distanceTransform((~fg_seed).astype(np.uint8), cv2.DIST_L2, 3)
    near_fg = to_fg <= prior
    frame = np.zeros((wh, ww), bool)
    b = max(1, settings.border)
    frame[:b], frame[-b:], frame[:, :b], frame[:, -b:] = True, True, True, True
    if settings.init == "voronoi" or (settings.init == "auto" and not bg_seed.any()):
        # GrabCut's rectangle, generalised: each pixel starts on the side of its nearest seed, the
        # image border counting as a background seed (so the background model starts from what
        # surrounds the subject, not from the subject itself)
        to_bg = cv2.distanceTransform((~(bg_seed | frame)).astype(np.uint8), cv2.DIST_L2, 3)
        near_fg = near_fg | (to_fg < to_bg)
    mask[near_fg] = cv2.GC_PR_FGD
    if settings.border > 0 and (settings.frame_always or not bg_seed.any()):
        mask[frame & ~(to_fg <= prior)] = cv2.GC_BGD
    mask[fg_seed] = cv2.GC_FGD
    mask[bg_seed] = cv2.GC_BGD
    if not np.isin(mask, (cv2.GC_BGD, cv2.GC_PR_BGD)).any():  # the prior covers everything
        mask[~fg_seed] = cv2.GC_PR_BGD
    if np.isin(mask, (cv2.GC_BGD, cv2.GC_PR_BGD)).any():
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(0)  # GrabCut's k-means initialisation draws from OpenCV's RNG
        cv2.grabCut(_to_bgr8(small), mask, None, bgd, fgd, settings.iterations, cv2.GC_INIT_WITH_MASK)
    fg = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    return _keep_seeded(fg, fg_seed), s


def _keep_seeded(fg: np.ndarray, fg_seed: np.ndarray) -> np.ndarray:
    """The connected components (8-neighbourhood) of ``fg`` that hold a foreground seed."""
    count, labels = cv2.connectedComponents(fg.astype(np.uint8), connectivity=8)
    if count <= 2:
        return fg
    keep = np.zeros(count, bool)
    keep[np.unique(labels[fg_seed & fg])] = True
    keep[0] = False
    return keep[labels]


def click_trimap(image: np.ndarray, guidance: list, radius: float = DEFAULT_RADIUS,
                 settings: ClickTrimapSettings = ClickTrimapSettings(), path: object = "clicks") -> np.ndarray:
    """uint8 HxW trimap (0 / 128 / 255) from clicks and strokes; see the module docstring."""
    h, w = image.shape[:2]
    small_fg, s = segment(image, guidance, radius, settings, path)
    if s < 1.0:
        fg = cv2.resize(small_fg.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) >= 0.5
    else:
        fg = small_fg
    fg8 = fg.astype(np.uint8)
    trimap = np.where(fg, FOREGROUND, BACKGROUND).astype(np.uint8)
    if fg.any() and not fg.all():
        inside = cv2.distanceTransform(fg8, cv2.DIST_L2, 3)
        outside = cv2.distanceTransform(1 - fg8, cv2.DIST_L2, 3)
        to_edge = np.where(fg, inside, outside)  # distance to the other class
        trimap[to_edge <= max(settings.band_min, settings.band_work / s)] = UNKNOWN
    seeds = signed_click_map(guidance, h, w, radius, path)
    trimap[seeds > 0] = FOREGROUND
    trimap[seeds < 0] = BACKGROUND
    return trimap


def click_trimap_alpha(image: np.ndarray, guidance: list, radius: float = DEFAULT_RADIUS,
                       settings: ClickTrimapSettings = ClickTrimapSettings(), path: object = "clicks") -> np.ndarray:
    """float32 HxW alpha: closed-form matting of the band of :func:`click_trimap`."""
    from mattecli.inference.closed_form import closed_form_alpha

    return closed_form_alpha(image, trimap=click_trimap(image, guidance, radius, settings, path))


__all__ = ["ClickTrimapSettings", "Click", "Stroke", "click_trimap", "click_trimap_alpha", "segment"]
