"""Mean absolute difference, the trimap-free human-matting papers' extra metric."""
from __future__ import annotations

import numpy as np


def mad(pred: np.ndarray, gt: np.ndarray, region: np.ndarray) -> float:
    """sum |pred - gt| over ``region`` divided by its pixel count (0 for an empty region).

    The portrait-matting papers (MODNet, P3M, PPM) report it over the whole image, usually
    x 1e3; here it is raw, in alpha units (0..1), like MSE.
    """
    count = int(np.count_nonzero(region))
    if count == 0:
        return 0.0
    return float(np.abs(pred - gt)[region].sum(dtype=np.float64)) / count
