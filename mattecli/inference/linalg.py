"""Small closed-form linear algebra applied elementwise to arrays of many tiny systems.

Per-pixel 3x3 colour covariances (closed-form matting, the guided filter) are inverted by
cofactors on whole arrays at once, much faster than a batched LAPACK call.
"""
from __future__ import annotations

import numpy as np


def symmetric3x3_adjugate(s00: np.ndarray, s01: np.ndarray, s02: np.ndarray, s11: np.ndarray, s12: np.ndarray,
                          s22: np.ndarray) -> tuple[np.ndarray, ...]:
    """Adjugate and determinant of the symmetric matrices [[s00 s01 s02] [s01 s11 s12] [s02 s12 s22]].

    Returns ``(m00, m01, m02, m11, m12, m22, det)``: the inverse is ``m / det`` (``m`` is
    symmetric too). Callers divide themselves, so they can fold a scale into the division.
    """
    m00 = s11 * s22 - s12 * s12
    m01 = s02 * s12 - s01 * s22
    m02 = s01 * s12 - s02 * s11
    m11 = s00 * s22 - s02 * s02
    m12 = s01 * s02 - s00 * s12
    m22 = s00 * s11 - s01 * s01
    det = s00 * m00 + s01 * m01 + s02 * m02
    return m00, m01, m02, m11, m12, m22, det
