"""Connectivity error (``compute_connectivity_error.m``).

For each level t = 0.1 .. 1.0 the largest 4-connected component of ``(p >= t) & (g >= t)``
is found; a pixel's level ``l`` is the level before the first one whose component does not
contain it (1 if every one does); ``d = alpha - l``, ``phi = 1 - d * (d >= 0.15)``, and the
error is sum |phi_p - phi_g| over the unknown region / 1000 (the division is in ``evaluate.m``).

Only the unknown pixels' levels are ever used, so they are the only ones tracked: each level
costs one threshold and one connected-components pass over the image, then a gather over the
unknown pixels. Once every unknown pixel has left the components, the remaining levels
cannot change anything and are skipped.
"""
from __future__ import annotations

import cv2
import numpy as np

from mattecli.metrics.alpha import single_at_least

STEP = 0.1
THETA = 0.15


def matlab_colon(start: float, step: float, stop: float) -> np.ndarray:
    """MATLAB's ``start:step:stop`` in double, element for element.

    MATLAB builds the first half as ``start + k*step`` and the second half as
    ``stop - (n-k)*step``, so ``0:0.1:1`` holds 0.6 and 0.7 exactly as typed (unlike
    ``np.arange``, whose 0.6000000000000001 makes the 8-bit value 153 fail the 0.6 test).
    """
    n = int(round((stop - start) / step))
    k = np.arange(n + 1, dtype=np.float64)
    first = start + k * step
    second = stop - (n - k) * step
    return np.where(k < n / 2, first, second)


def largest_component(mask: np.ndarray, tie: str = "column-major",
                      hint: np.ndarray | None = None) -> tuple[np.ndarray | None, int]:
    """Labels and the label of the largest 4-connected component of a uint8 0/1 mask.

    Returns (None, 0) for an empty mask. Among equally large components, ``column-major``
    picks the one whose first pixel in column-major order comes first: the order in which
    MATLAB's ``bwconncomp`` lists components, which ``max`` then resolves to the first.
    ``opencv`` picks OpenCV's lowest label (row-major discovery), as mmagic's ``argmax`` does.

    ``hint`` (flat pixel indices likely to lie in the largest component) allows a shortcut:
    a component holding more than half of the mask is the unique largest, which settles the
    usual case without counting every component's area.
    """
    count, labels = cv2.connectedComponents(mask, connectivity=4, ltype=cv2.CV_32S)
    if count <= 1:
        return None, 0
    if count == 2:
        return labels, 1
    flat = labels.ravel()
    if hint is not None and hint.size:
        hinted = flat[hint]
        hinted = hinted[hinted > 0]
        if hinted.size:
            candidate = int(np.argmax(np.bincount(hinted)))
            if 2 * np.count_nonzero(flat == candidate) > np.count_nonzero(mask):
                return labels, candidate
    areas = np.bincount(flat, minlength=count)
    areas[0] = 0
    if tie == "opencv":
        return labels, int(np.argmax(areas))
    tied = np.flatnonzero(areas == areas.max())
    if tied.size == 1:
        return labels, int(tied[0])
    is_tied = np.zeros(count, bool)
    is_tied[tied] = True
    first = int(np.argmax(is_tied[labels].T.ravel()))  # first tied pixel in column-major order
    h = labels.shape[0]
    return labels, int(labels[first % h, first // h])


def _crop_to_first_level(both: np.ndarray, unknown_idx: np.ndarray, first
                         ) -> tuple[np.ndarray, np.ndarray]:
    """``both`` cropped to the bounding box of its first-level mask, and the unknown pixels'
    flat indices in the crop.

    Every level's mask lies inside that box, so its components (and their column-major and
    row-major orders) are the same in the crop; unknown pixels outside the box fail the first
    level and are never looked up (their crop index is meaningless).
    """
    rows = np.flatnonzero((both >= first).any(axis=1))
    if rows.size == 0:
        return both[:0, :0], np.zeros_like(unknown_idx)
    cols = np.flatnonzero((both >= first).any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    crop = np.ascontiguousarray(both[y0:y1, x0:x1])
    y, x = np.divmod(unknown_idx, both.shape[1])
    return crop, (y - y0) * (x1 - x0) + (x - x0)


def _level_map(both_u: np.ndarray, both: np.ndarray, local_idx: np.ndarray, levels: np.ndarray,
               thresholds: list, tie: str) -> np.ndarray:
    """``l`` at the unknown pixels, float64, as the MATLAB loop builds ``l_map``.

    ``both`` holds min(p, g) (``p >= t & g >= t`` is ``min(p, g) >= t``), ``both_u`` its
    values at the unknown pixels and ``local_idx`` their flat indices into ``both``.
    ``thresholds[i]`` is the value that ``both >= thresholds[i]`` compares with for level i.
    """
    level = np.ones(both_u.size, np.float64)  # pixels in every component keep l = 1
    open_ = np.arange(both_u.size)  # unknown pixels still inside every component so far
    for i in range(1, len(levels)):
        t = thresholds[i]
        inside = both_u[open_] >= t
        if inside.any():
            candidates = local_idx[open_[inside]]
            labels, best = largest_component(np.greater_equal(both, t).view(np.uint8), tie, hint=candidates)
            inside[inside] = False if labels is None else labels.ravel()[candidates] == best
        leaving = open_[~inside]
        level[leaving] = levels[i - 1]
        open_ = open_[inside]
        if open_.size == 0:
            break
    return level


def connectivity_error(pred: np.ndarray, gt: np.ndarray, unknown: np.ndarray,
                       convention: str = "matlab", step: float = STEP, theta: float = THETA) -> float:
    """Connectivity error / 1000 of two alphas over ``unknown``.

    ``matlab``: float32 alphas (``single(x)/255``), levels from MATLAB's colon operator,
    single-vs-double comparisons at double precision (so 153/255 passes 0.6), ``d`` in
    single, column-major ties. ``mmagic``: float64 alphas, ``np.arange`` levels, OpenCV's
    label order for ties, all in double.
    """
    unknown_idx = np.flatnonzero(unknown)
    if unknown_idx.size == 0:
        return 0.0
    both = np.minimum(pred, gt)
    if convention == "matlab":
        levels = matlab_colon(0.0, step, 1.0)
        thresholds = [single_at_least(t) for t in levels]
        tie, theta_cmp = "column-major", single_at_least(theta)
    else:
        levels = np.arange(0, 1 + step, step)
        thresholds, tie, theta_cmp = list(levels), "opencv", theta
    crop, local_idx = _crop_to_first_level(both, unknown_idx, thresholds[1])
    level = _level_map(both.ravel()[unknown_idx], crop, local_idx, levels, thresholds, tie).astype(pred.dtype)
    phis = []
    for alpha in (pred, gt):
        d = alpha.ravel()[unknown_idx] - level
        phis.append(1 - d * (d >= theta_cmp).astype(d.dtype))
    return float(np.abs(phis[0] - phis[1]).sum(dtype=np.float64)) / 1000.0
