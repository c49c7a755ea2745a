"""Mean squared error over the unknown region (``compute_mse_loss.m``)."""
from __future__ import annotations

import numpy as np


def mse(pred: np.ndarray, gt: np.ndarray, unknown: np.ndarray, sum_over_all: bool = False) -> float:
    """sum (pred - gt)^2 over the unknown pixels, divided by their number.

    With ``sum_over_all`` the squares are summed over the whole image but still divided by
    the number of unknown pixels (mmagic's ``MattingMSE``). No unknown pixel gives 0, where
    the MATLAB code gives NaN (0/0): a NaN would poison every mean it enters.
    """
    count = int(np.count_nonzero(unknown))
    if count == 0:
        return 0.0
    sq = np.square(pred - gt)
    total = sq.sum(dtype=np.float64) if sum_over_all else sq[unknown].sum(dtype=np.float64)
    return float(total) / count
