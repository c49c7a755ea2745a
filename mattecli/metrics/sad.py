"""Sum of absolute differences (``compute_sad_loss.m``)."""
from __future__ import annotations

import numpy as np


def sad(pred: np.ndarray, gt: np.ndarray, region: np.ndarray | None) -> float:
    """sum |pred - gt| over ``region`` (all pixels when None), divided by 1000.

    ``pred`` and ``gt`` are alphas of one dtype (float32 for MATLAB's single arithmetic);
    the element-wise differences are taken in that dtype and summed in double.
    """
    diff = np.abs(pred - gt)
    total = diff.sum(dtype=np.float64) if region is None else diff[region].sum(dtype=np.float64)
    return float(total) / 1000.0
