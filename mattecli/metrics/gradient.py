"""Gradient error (``compute_gradient_loss.m`` + ``gaussgradient.m``).

Both mattes are min-max normalised over the whole image (``mat2gray``), filtered with the
first-derivative-of-Gaussian kernel of Guanglei Xiong's ``gaussgradient`` (sigma 1.4, 9x9,
L2-normalised) by true convolution with replicated borders in double precision, and the
squared difference of the gradient magnitudes (cast to single, as the MATLAB does) is summed
over the unknown region and divided by 1000 (the division lives in ``evaluate.m``).
"""
from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

SIGMA = 1.4
EPSILON = 1e-2  # gaussgradient's truncation: the kernel reaches down to 1% of the peak


@lru_cache(maxsize=8)
def gauss_factors(sigma: float = SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """The two 1-D factors of gaussgradient's kernel ``hx = G(rows) x G'(columns) / ||.||_F``.

    The kernel has rank one, so its Frobenius norm is the product of the factors' norms and
    each factor can be normalised on its own. Returns (smoothing, derivative), offsets
    -half..half, ``half = ceil(sigma * sqrt(-2 ln(sqrt(2 pi) sigma eps)))`` (4 for 1.4).
    """
    half = math.ceil(sigma * math.sqrt(-2.0 * math.log(math.sqrt(2.0 * math.pi) * sigma * EPSILON)))
    u = np.arange(-half, half + 1, dtype=np.float64)
    gauss = np.exp(-u ** 2 / (2.0 * sigma ** 2)) / (sigma * math.sqrt(2.0 * math.pi))
    dgauss = -u * gauss / sigma ** 2
    return gauss / np.linalg.norm(gauss), dgauss / np.linalg.norm(dgauss)


def _filter_window(unknown: np.ndarray, half: int) -> tuple[slice, slice] | None:
    """Bounding box of the unknown region grown by the kernel's half size.

    Every filtered value inside the box depends only on pixels inside the grown box, and
    where the box meets the image border, replication is the true border rule, so filtering
    the crop gives exactly the full-image values on the unknown pixels.
    """
    rows = np.flatnonzero(unknown.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(unknown.any(axis=0))
    h, w = unknown.shape
    return (slice(max(rows[0] - half, 0), min(rows[-1] + half + 1, h)),
            slice(max(cols[0] - half, 0), min(cols[-1] + half + 1, w)))


def gradient_magnitude(image: np.ndarray, sigma: float = SIGMA, convolve: bool = True) -> np.ndarray:
    """sqrt(gx^2 + gy^2) of a float64 image, replicated borders.

    ``convolve`` flips the kernels (MATLAB's ``imfilter(..., 'conv')``); without it the
    filtering is a correlation, as OpenCV's ``filter2D`` in mmagic. Only the signs of gx and
    gy differ, but the flip keeps the arithmetic the same as the MATLAB's.
    """
    smooth, deriv = gauss_factors(sigma)
    if convolve:
        smooth, deriv = smooth[::-1].copy(), deriv[::-1].copy()
    gx = cv2.sepFilter2D(image, cv2.CV_64F, deriv, smooth, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.sepFilter2D(image, cv2.CV_64F, smooth, deriv, borderType=cv2.BORDER_REPLICATE)
    return np.sqrt(gx * gx + gy * gy)


def _mat2gray(image: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """MATLAB's ``mat2gray`` with the whole image's limits; a constant image has no gradient."""
    if hi == lo:
        return np.zeros(image.shape, np.float64)
    return (image - lo) / (hi - lo)


def gradient_error(pred: np.ndarray, gt: np.ndarray, unknown: np.ndarray,
                   convention: str = "matlab", sigma: float = SIGMA) -> float:
    """Gradient error / 1000 of two alphas (any float dtype) over ``unknown``.

    ``matlab``: mat2gray, true convolution in double, magnitudes cast to single, squared
    difference in single, summed. ``mmagic``: ``cv2.normalize`` min-max, correlation, all
    in double.
    """
    half = len(gauss_factors(sigma)[0]) // 2
    window = _filter_window(unknown, half)
    if window is None:
        return 0.0
    amplitudes = []
    for alpha in (pred, gt):
        if convention == "matlab":  # float32 -> float64 is exact, so only the crop is converted
            crop = _mat2gray(alpha[window].astype(np.float64), float(alpha.min()), float(alpha.max()))
            amplitudes.append(gradient_magnitude(crop, sigma, convolve=True).astype(np.float32))
        else:
            normed = cv2.normalize(alpha.astype(np.float64, copy=False), None, 1.0, 0.0, cv2.NORM_MINMAX)
            amplitudes.append(gradient_magnitude(normed[window], sigma, convolve=False))
    diff = amplitudes[0] - amplitudes[1]
    inside = unknown[window]
    return float(np.square(diff)[inside].sum(dtype=np.float64)) / 1000.0
