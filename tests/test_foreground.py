"""Multi-level foreground estimation against a per-pixel reference and on a case with known F."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mattecli.inference.foreground import estimate_foreground


def reference_ml(image, alpha, reg=1e-5, n_small=10, n_big=2, small=32, gw=1.0):
    """Germer et al. written out pixel by pixel (Jacobi sweeps, pymatting's level and resize rules)."""
    h0, w0, _ = image.shape

    def nearest(src, h, w):
        hs, ws = src.shape[:2]
        return np.array([[src[min(y * hs // h, hs - 1), min(x * ws // w, ws - 1)] for x in range(w)] for y in range(h)])

    f_mean = image[alpha > 0.9].sum(axis=0) / ((alpha > 0.9).sum() + 1e-5)
    b_mean = image[alpha < 0.1].sum(axis=0) / ((alpha < 0.1).sum() + 1e-5)
    F, B = f_mean[None, None].copy(), b_mean[None, None].copy()
    n_levels = math.ceil(math.log2(max(h0, w0)))
    for i in range(n_levels + 1):
        w, h = round(w0 ** (i / n_levels)), round(h0 ** (i / n_levels))
        img, a = nearest(image, h, w), nearest(alpha, h, w)
        F, B = nearest(F, h, w), nearest(B, h, w)
        for _ in range(n_small if (w <= small and h <= small) else n_big):
            F_new, B_new = F.copy(), B.copy()
            for y in range(h):
                for x in range(w):
                    a0 = a[y, x]
                    a1 = 1 - a0
                    m = np.array([[a0 * a0, a0 * a1], [a0 * a1, a1 * a1]])
                    rhs = np.stack([a0 * img[y, x], a1 * img[y, x]])
                    for dy, dx in ((0, -1), (0, 1), (-1, 0), (1, 0)):
                        y2, x2 = min(max(y + dy, 0), h - 1), min(max(x + dx, 0), w - 1)
                        da = reg + gw * abs(a0 - a[y2, x2])
                        m += da * np.eye(2)
                        rhs += da * np.stack([F[y2, x2], B[y2, x2]])
                    sol = np.clip(np.linalg.solve(m, rhs), 0, 1)
                    F_new[y, x], B_new[y, x] = sol
            F, B = F_new, B_new
    return F, B


def test_matches_pixelwise_reference():
    rng = np.random.default_rng(0)
    image = rng.random((9, 13, 3)).astype(np.float32)
    alpha = np.clip(rng.random((9, 13)) * 1.4 - 0.2, 0, 1).astype(np.float32)
    F_ref, B_ref = reference_ml(image.astype(np.float64), alpha.astype(np.float64))
    F, B = estimate_foreground(image, alpha, return_background=True)
    assert F.shape == (9, 13, 3) and F.dtype == np.float32
    np.testing.assert_allclose(F, F_ref, atol=2e-5)
    np.testing.assert_allclose(B, B_ref, atol=2e-5)


def synthetic_case(h=64, w=80, seed=1):
    """Smooth foreground and background colours, a soft disk alpha with a wide fractional ramp."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    fg = np.stack([0.9 - 0.3 * xx / w, 0.6 + 0.2 * yy / h, 0.1 + 0.1 * xx / w], axis=2)
    bg = np.stack([0.1 + 0.2 * yy / h, 0.4 + 0.3 * xx / w, 0.9 - 0.2 * yy / h], axis=2)
    r = np.hypot(yy - h / 2, xx - w / 2)
    alpha = np.clip((24 - r) / 12, 0, 1) * (0.8 + 0.2 * rng.random((h, w)))
    alpha = np.where(r < 12, 1.0, alpha).astype(np.float32)
    image = (alpha[:, :, None] * fg + (1 - alpha[:, :, None]) * bg).astype(np.float32)
    return image, alpha, fg.astype(np.float32)


def test_foreground_beats_the_raw_image_where_alpha_is_fractional():
    image, alpha, fg_true = synthetic_case()
    soft = (alpha > 0.05) & (alpha < 0.95)
    fg = estimate_foreground((image * 255).round().astype(np.uint8), alpha)
    err_est = np.abs(fg - fg_true)[soft].mean()
    err_raw = np.abs(image - fg_true)[soft].mean()
    assert err_est < 0.5 * err_raw, (err_est, err_raw)


def test_uint8_alpha_accepted_and_known_foreground_kept():
    image, alpha, _ = synthetic_case(32, 40)
    a8 = (alpha * 255).round().astype(np.uint8)
    fg = estimate_foreground(image, a8)
    opaque = a8 == 255
    np.testing.assert_allclose(fg[opaque], image[opaque], atol=0.02)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    image, alpha, _ = synthetic_case()
    np.testing.assert_allclose(estimate_foreground(image, alpha, device="cuda"),
                               estimate_foreground(image, alpha, device="cpu"), atol=1e-4)
