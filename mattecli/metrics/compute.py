"""All four metrics of one prediction, in either convention."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from mattecli.data.trimap import clamp_known
from mattecli.metrics.alpha import as_alpha, unknown_region
from mattecli.metrics.connectivity import connectivity_error
from mattecli.metrics.gradient import gradient_error
from mattecli.metrics.mad import mad
from mattecli.metrics.mse import mse
from mattecli.metrics.sad import sad

METRIC_NAMES = ("sad", "mse", "grad", "conn", "mad")
#: what is computed unless asked otherwise: the four DIM metrics (MAD on request)
DEFAULT_METRICS = ("sad", "mse", "grad", "conn")
CONVENTIONS = ("matlab", "mmagic")
#: which pixels are scored: the trimap's unknown band (Composition-1k) or every pixel (the
#: trimap-free convention of the human-matting papers: SHM, MODNet, P3M)
REGIONS = ("unknown", "all")


def check_metric_names(metrics: Iterable[str]) -> tuple[str, ...]:
    """The requested metrics in canonical order; unknown names are a ValueError."""
    wanted = [m.strip().lower() for m in metrics if m.strip()]
    bad = [m for m in wanted if m not in METRIC_NAMES]
    if bad or not wanted:
        raise ValueError(f"unknown metric(s) {', '.join(bad) or '(none)'}; choose from {', '.join(METRIC_NAMES)}")
    return tuple(m for m in METRIC_NAMES if m in wanted)


def compute_metrics(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray,
                    metrics: Iterable[str] = DEFAULT_METRICS, convention: str = "matlab",
                    region: str = "unknown") -> dict[str, float]:
    """SAD, MSE, Grad and Conn of one prediction, as the DIM MATLAB code computes them.

    ``pred`` and ``gt`` are HxW uint8 (/255), uint16 (/65535) or float in [0, 1]; ``trimap``
    is HxW uint8 with the unknown region exactly 128. SAD, Grad and Conn are divided by 1000
    (as published); MSE is raw. ``convention="mmagic"`` reproduces mmagic 1.x instead (SAD
    and the MSE numerator over the whole image, np.arange levels, OpenCV tie order).
    MAD is the mean absolute difference over the scored pixels. ``region="all"`` scores
    every pixel (the trimap is then only a shape; pass ``None`` when there is none): the
    region simply replaces the unknown band in every formula above (matlab convention only).
    """
    names = check_metric_names(metrics)
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; choose from {', '.join(CONVENTIONS)}")
    if region not in REGIONS:
        raise ValueError(f"unknown region {region!r}; choose from {', '.join(REGIONS)}")
    if region == "all":
        if convention != "matlab":
            raise ValueError("the whole-image region is scored with the matlab convention only")
        shape = np.asarray(trimap if trimap is not None else gt).shape
        unknown = np.ones(shape[:2] if len(shape) > 2 else shape, bool)
    else:
        unknown = unknown_region(trimap)
    pred, gt = np.asarray(pred), np.asarray(gt)
    if not pred.shape == gt.shape == unknown.shape:
        raise ValueError(f"shapes differ: pred {pred.shape}, gt {gt.shape}, trimap {unknown.shape}")
    matlab = convention == "matlab"
    dtype = np.float32 if matlab else np.float64  # MATLAB: single(x)/255; mmagic: x / 255.0
    p, g = as_alpha(pred, dtype), as_alpha(gt, dtype)
    if not matlab:
        # mmagic's matting models set known pixels from the trimap before scoring (its metrics
        # refuse a prediction that is not masked), so its numbers are those of the masked prediction.
        p = clamp_known(p, np.asarray(trimap))
    scores: dict[str, float] = {}
    if matlab and any(n in names for n in ("sad", "mse", "mad")):
        # SAD, MSE and MAD read only the scored pixels: gather them once (the same values in the
        # same order as masking each full-image difference, so the same sums)
        p_in, g_in = p[unknown], g[unknown]
        everywhere = np.ones(p_in.shape, bool)
    for name in names:
        if name == "sad":
            scores[name] = sad(p_in, g_in, None) if matlab else sad(p, g, None)
        elif name == "mse":
            scores[name] = mse(p_in, g_in, everywhere, sum_over_all=True) if matlab else \
                mse(p, g, unknown, sum_over_all=True)
        elif name == "grad":
            scores[name] = gradient_error(p, g, unknown, convention)
        elif name == "mad":
            scores[name] = mad(p_in, g_in, everywhere) if matlab else mad(p, g, unknown)
        else:
            scores[name] = connectivity_error(p, g, unknown, convention)
    return scores
