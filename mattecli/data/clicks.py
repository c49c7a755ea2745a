"""Clicks as maps: the one rasterisation every click user shares, and the simulated user.

A click is a point ``(x, y)`` (column, row; 0-based pixel centres, origin top-left) labelled
foreground or background. It covers a disk: every pixel whose centre lies within ``radius``
of the point. All encodings are views of one signed map U (Wei et al., CVPR 2021):

- :func:`signed_click_map`: float32 HxW, +1 inside foreground disks, -1 inside background
  disks, 0 elsewhere. Where disks overlap, **the later click in the list wins** (a user's
  newer click corrects an older one).
- :func:`click_maps`: float32 2xHxW ``(U > 0, U < 0)``, the network guidance of the registry
  contract (Bx2xHxW positive/negative); since the channels never overlap, ``U = ch0 - ch1``.
- :func:`constraint_map`: uint8 HxW in the trimap encoding (255 foreground, 0 background,
  128 free), the hard constraints of the classical method.

Clicks outside the image are refused with one line naming the source (``BadInput``).

The simulated user (:func:`next_click`) is shared by the click family's training (error-driven
extra clicks) and by ``eval --simulate-clicks``: it clicks the point deepest inside the larger
error region (missed foreground -> foreground click, background taken -> background click).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mattecli.data.trimap import BACKGROUND, FOREGROUND, UNKNOWN
from mattecli.errors import BadInput

#: the classical method's disk radius in pixels (``matte --click-radius``)
DEFAULT_RADIUS = 5.0


@dataclass(frozen=True)
class Click:
    x: float
    y: float
    positive: bool  # True: foreground, False: background

    @property
    def label(self) -> str:
        return "fg" if self.positive else "bg"


def check_inside(clicks: list[Click], height: int, width: int, path: object = "clicks") -> None:
    """One-line ``BadInput`` naming ``path`` for the first click outside the image."""
    for c in clicks:
        if not (0 <= c.x <= width - 1 and 0 <= c.y <= height - 1):
            raise BadInput(path, f"click at ({c.x:g}, {c.y:g}) lies outside the {width}x{height} image")


def signed_click_map(clicks: list[Click], height: int, width: int, radius: float = DEFAULT_RADIUS,
                     path: object = "clicks") -> np.ndarray:
    """float32 HxW U: +1 in foreground disks, -1 in background disks, 0 elsewhere; later clicks win."""
    check_inside(clicks, height, width, path)
    out = np.zeros((height, width), np.float32)
    r2 = float(radius) * float(radius)
    for c in clicks:
        # only the disk's bounding box is touched: a click costs O(r^2), not O(H*W)
        y0, y1 = max(0, int(np.floor(c.y - radius))), min(height, int(np.ceil(c.y + radius)) + 1)
        x0, x1 = max(0, int(np.floor(c.x - radius))), min(width, int(np.ceil(c.x + radius)) + 1)
        ys, xs = np.ogrid[y0:y1, x0:x1]
        disk = (xs - c.x) ** 2 + (ys - c.y) ** 2 <= r2
        out[y0:y1, x0:x1][disk] = 1.0 if c.positive else -1.0
    return out


def click_maps(clicks: list[Click], height: int, width: int, radius: float = DEFAULT_RADIUS,
               path: object = "clicks") -> np.ndarray:
    """float32 2xHxW network guidance: channel 0 where U = +1, channel 1 where U = -1 (0/1)."""
    return split_signed(signed_click_map(clicks, height, width, radius, path))


def split_signed(u: np.ndarray) -> np.ndarray:
    """U (HxW in {-1, 0, 1}) as the 2xHxW positive/negative maps."""
    return np.stack([(u > 0), (u < 0)]).astype(np.float32)


def constraint_map(clicks: list[Click], height: int, width: int, radius: float = DEFAULT_RADIUS,
                   path: object = "clicks") -> np.ndarray:
    """uint8 HxW in the trimap encoding: 255 foreground disks, 0 background disks, 128 free."""
    u = signed_click_map(clicks, height, width, radius, path)
    return np.where(u > 0, FOREGROUND, np.where(u < 0, BACKGROUND, UNKNOWN)).astype(np.uint8)


# ----------------------------------------------------------------------------- the simulated user

def error_regions(pred: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(missed foreground, background taken) as bool HxW: ``gt >= t > pred`` and ``pred >= t > gt``."""
    gt_fg, pred_fg = gt >= threshold, pred >= threshold
    return gt_fg & ~pred_fg, pred_fg & ~gt_fg


def distance_inside(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance of each mask pixel to the nearest pixel outside it, the image border
    counting as outside (RITM pads the mask with a zero border the same way)."""
    padded = np.pad(mask.astype(np.uint8), 1)
    return cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]


def next_click(pred: np.ndarray, gt: np.ndarray, threshold: float = 0.5,
               rng: np.random.Generator | None = None) -> Click | None:
    """The simulated user's next click, or None when no pixel is wrong at ``threshold``.

    The larger of the two error regions (ties: missed foreground) gets the click, as a
    foreground click for missed foreground, a background click for background taken. Without
    ``rng`` it lands on the region's deepest pixel (maximum distance transform; ties broken by
    raster order), the evaluation protocol; with ``rng`` on a random pixel whose depth is at
    least half the maximum (RITM's training-time clicks).
    """
    missed, taken = error_regions(np.asarray(pred, np.float32), np.asarray(gt, np.float32), threshold)
    n_missed, n_taken = int(missed.sum()), int(taken.sum())
    if n_missed == 0 and n_taken == 0:
        return None
    positive = n_missed >= n_taken
    depth = distance_inside(missed if positive else taken)
    if rng is None:
        y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    else:
        ys, xs = np.nonzero(depth >= 0.5 * depth.max())
        k = int(rng.integers(len(ys)))
        y, x = ys[k], xs[k]
    return Click(float(x), float(y), positive)


def first_click(gt: np.ndarray, threshold: float = 0.5) -> Click | None:
    """The protocol's first click: the deepest point of the foreground (all of it still missed)."""
    return next_click(np.zeros_like(np.asarray(gt, np.float32)), gt, threshold)


def network_scale(height: int, width: int, max_side: int = 0) -> float:
    """Network input pixels per image pixel for a network that runs an image at its own size,
    shrunk so that its longer side is at most ``max_side`` (0: never shrunk)."""
    longest = max(int(height), int(width))
    return float(max_side) / longest if max_side and longest > max_side else 1.0


def radius_for_network(radius: float, scale: float) -> float:
    """The disk radius in image pixels that covers ``radius`` pixels of the network's input when
    the network sees the image resized by ``scale`` (:func:`network_scale`).

    The click family's one radius rule: ``click_radius`` is a length in **network pixels**.
    Training draws its disks on the crop after it is resized to the network's input
    (scale 1), so at inference the disk must cover the same number of network pixels,
    whatever the image's own size (``matte --clicks --weights``, the studio, ``eval
    --simulate-clicks --weights`` and validation all call this through
    ``ClickMatting.click_radius_for``).
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, not {scale!r}")
    return float(radius) / float(scale)


def geometric_count(rng: np.random.Generator, p: float, cap: int = 0) -> int:
    """A draw of m ~ Geometric(p) on {1, 2, ...}, P(m = k) = p (1-p)^(k-1) (the click paper's
    number of simulated clicks at p = 1/6, mean 1/p), clipped at ``cap`` when ``cap`` > 0: the
    mass beyond the cap lands on it, P(m = cap) = (1-p)^(cap-1), and every k < cap keeps its
    stated probability."""
    if not 0 < p <= 1 or cap < 0:
        raise ValueError("need 0 < p <= 1 and cap >= 0")
    m = int(rng.geometric(p))
    return min(m, int(cap)) if cap else m


def interior_clicks(alpha: np.ndarray, n_fg: int, n_bg: int, threshold: float = 0.5) -> list[Click]:
    """``n_fg`` foreground clicks inside the subject and ``n_bg`` background clicks inside the
    background, spread out as a person places them: each the deepest point (distance transform,
    border as outside) of what is left of its region once the disk of the previous click's depth
    is taken out. Deterministic (raster-order ties); fewer when a region runs out."""
    alpha = np.asarray(alpha, np.float32)
    clicks: list[Click] = []
    for n, region, positive in ((n_fg, alpha >= threshold, True), (n_bg, alpha < threshold, False)):
        left = region.copy()
        for _ in range(n):
            if not left.any():
                break
            depth = distance_inside(left)
            y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
            clicks.append(Click(float(x), float(y), positive))
            ys, xs = np.ogrid[:alpha.shape[0], :alpha.shape[1]]
            left &= (xs - x) ** 2 + (ys - y) ** 2 > max(float(depth[y, x]), 1.0) ** 2
    return clicks
