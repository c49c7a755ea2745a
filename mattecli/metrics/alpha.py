"""Bringing mattes and trimaps into the form the metric definitions expect."""
from __future__ import annotations

import numpy as np

UNKNOWN = 128  # the MATLAB code scores ``trimap == 128`` exactly


def as_alpha(matte: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """Alpha in [0, 1] as ``dtype``: 8-bit / 255, 16-bit / 65535, floats clipped to [0, 1].

    The division happens in ``dtype`` itself, so ``as_alpha(u8, np.float32)`` is MATLAB's
    ``single(x)/255`` bit for bit and ``as_alpha(u8, np.float64)`` is NumPy's ``x / 255.0``.
    Floats are clipped (what writing them to an image file would do) and must not be NaN.
    """
    matte = np.asarray(matte)
    if matte.ndim != 2:
        raise ValueError(f"a matte must be a 2-D array, got shape {matte.shape}")
    if matte.dtype == np.uint8:
        return matte.astype(dtype) / dtype(255)
    if matte.dtype == np.uint16:
        return matte.astype(dtype) / dtype(65535)
    if np.issubdtype(matte.dtype, np.floating):
        out = matte.astype(dtype, copy=True)
        if np.isnan(out).any():
            raise ValueError("a matte contains NaN")
        return np.clip(out, 0, 1, out=out)
    raise ValueError(f"unsupported matte type {matte.dtype} (expected uint8, uint16 or float)")


def unknown_region(trimap: np.ndarray) -> np.ndarray:
    """Boolean mask of the pixels the metrics score (``trimap == 128``)."""
    trimap = np.asarray(trimap)
    if trimap.ndim != 2:
        raise ValueError(f"a trimap must be a 2-D array, got shape {trimap.shape}")
    return trimap == UNKNOWN


def single_at_least(threshold: float) -> np.float32:
    """The smallest float32 that is >= ``threshold`` (a double).

    MATLAB compares a single with a double at double precision (``single(0.1) == 0.1`` is
    false), so ``a >= t`` for a single array ``a`` equals ``a >= single_at_least(t)`` done
    entirely in float32, which is what lets the hot loops stay in float32.
    """
    t32 = np.float32(threshold)
    if float(t32) < threshold:
        t32 = np.nextafter(t32, np.float32(np.inf))
    return t32
