"""Closed-form matting against an independent dense implementation of Levin's Laplacian."""
from __future__ import annotations

import numpy as np
import pytest

from mattecli.errors import MatteError
from mattecli.inference.clicks import Click, constraint_map
from mattecli.inference.closed_form import closed_form_alpha, matting_laplacian, solver_backend


def dense_levin_laplacian(image: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """Levin et al. eq. (12), window by window, straight from the paper (3x3 windows inside the image)."""
    h, w, _ = image.shape
    L = np.zeros((h * w, h * w))
    for y in range(1, h - 1):
        for x in range(1, w - 1):
            idx = [(y + dy) * w + (x + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
            colours = image.reshape(-1, 3)[idx]
            centred = colours - colours.mean(axis=0)
            cov = centred.T @ centred / 9.0
            inv = np.linalg.inv(cov + eps / 9.0 * np.eye(3))
            L[np.ix_(idx, idx)] += np.eye(9) - (1.0 + centred @ inv @ centred.T) / 9.0
    return L


def dense_solve(image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    L = dense_levin_laplacian(image)
    t = trimap.ravel()
    u, k = t == 128, t != 128
    a = (t == 255).astype(float)
    a[u] = np.linalg.solve(L[np.ix_(u, u)], -L[np.ix_(u, k)] @ a[k])
    return np.clip(a, 0, 1).reshape(trimap.shape)


def smooth_image(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w] / max(h, w)
    base = np.stack([0.2 + 0.6 * xx, 0.3 + 0.5 * yy, 0.5 + 0.3 * np.sin(6 * xx * yy)], axis=2)
    return np.clip(base + 0.08 * rng.standard_normal((h, w, 3)), 0, 1)


def test_laplacian_matches_dense_reference():
    image = smooth_image(7, 9, 0)
    ours = matting_laplacian(image).toarray()
    ref = dense_levin_laplacian(image)
    np.testing.assert_allclose(ours, ref, rtol=1e-7, atol=1e-6)
    np.testing.assert_allclose(ours, ours.T, atol=1e-9)
    np.testing.assert_allclose(ours.sum(axis=1), 0.0, atol=1e-6)  # constants are in the null space


@pytest.mark.parametrize("backend", ["superlu", "cholmod"])
def test_constrained_solve_matches_dense(backend):
    if backend == "cholmod":
        # cvxopt is a core dependency: a missing CHOLMOD is a broken install, not a reason to skip
        assert solver_backend() == "cholmod", "cvxopt (CHOLMOD) is not importable"
    h, w = 16, 19
    image = smooth_image(h, w, 1)
    trimap = np.zeros((h, w), np.uint8)
    trimap[:, 11:] = 255
    trimap[3:13, 6:14] = 128  # the unknown box sits inside the image: the crop path is exercised
    trimap[5, 2] = 128
    ref = dense_solve(image, trimap)
    ours = closed_form_alpha(image, trimap=trimap, backend=backend)
    assert ours.dtype == np.float32 and ours.shape == (h, w)
    np.testing.assert_allclose(ours, ref, atol=2e-5)
    assert 0.05 < ours[trimap == 128].mean() < 0.95  # a non-trivial solution


def test_known_pixels_are_kept_and_all_known_is_a_copy():
    image = (smooth_image(10, 10, 2) * 255).astype(np.uint8)
    trimap = np.zeros((10, 10), np.uint8)
    trimap[:, 5:] = 255
    np.testing.assert_array_equal(closed_form_alpha(image, trimap=trimap), trimap / 255.0)
    trimap[2:8, 3:7] = 128
    alpha = closed_form_alpha(image, trimap=trimap)
    assert np.all(alpha[trimap == 255] == 1) and np.all(alpha[trimap == 0] == 0)


def test_no_known_pixel_is_an_error():
    with pytest.raises(MatteError, match="no pixel"):
        closed_form_alpha(np.zeros((8, 8, 3), np.uint8), trimap=np.full((8, 8), 128, np.uint8))


def test_clicks_as_constraints_separate_two_colours():
    rng = np.random.default_rng(3)
    h, w = 40, 48
    image = np.empty((h, w, 3))
    image[:, :24] = (0.85, 0.3, 0.2)  # foreground: red
    image[:, 24:] = (0.15, 0.35, 0.8)  # background: blue
    image = np.clip(image + 0.03 * rng.standard_normal(image.shape), 0, 1)
    clicks = [Click(8, 10, True), Click(10, 30, True), Click(40, 12, False), Click(38, 33, False)]
    labels = constraint_map(clicks, h, w, radius=3)
    alpha = closed_form_alpha((image * 255).astype(np.uint8), constraints=labels)
    for c in clicks:
        assert alpha[int(c.y), int(c.x)] == (1.0 if c.positive else 0.0)
    assert alpha[:, :20].mean() > 0.95 and alpha[:, 28:].mean() < 0.05
