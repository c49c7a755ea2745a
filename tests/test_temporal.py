"""Temporal stability of the plate method: a still subject gives a still matte, a moving one no lag."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from video_clips import disc_alpha, textured_plate

from mattecli.inference.plate import PlateMatting
from mattecli.inference.temporal import TemporalFilter, TemporalSettings
from mattecli.metrics.video import dtssd

H, W = 120, 160
FG = np.array([200, 60, 50], np.float32)


def frames(centres: list[float], noise: float, seed: int = 3) -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    plate = textured_plate(H, W, seed=5).astype(np.float32)
    images, alphas = [], []
    for cx in centres:
        a = disc_alpha(H, W, cx, 60, 34, soft=4.0)
        img = a[:, :, None] * FG + (1 - a[:, :, None]) * plate + rng.normal(0, noise, plate.shape)
        images.append(np.clip(img + 0.5, 0, 255).astype(np.uint8))
        alphas.append(a)
    noisy_plate = np.clip(plate + rng.normal(0, noise, plate.shape) + 0.5, 0, 255).astype(np.uint8)
    return images, noisy_plate, alphas


def run(method: PlateMatting, images: list[np.ndarray], plate: np.ndarray) -> list[np.ndarray]:
    return [method(image, plate).alpha for image in images]


def mean_dtssd(preds: list[np.ndarray], alphas: list[np.ndarray]) -> float:
    return float(np.mean([dtssd(preds[t], preds[t - 1], alphas[t], alphas[t - 1]) for t in range(1, len(preds))]))


def test_a_still_subject_gives_a_much_stiller_matte():
    images, plate, alphas = frames([80.0] * 8, noise=4.0)
    single = run(PlateMatting(temporal=TemporalSettings(strength=0)), images, plate)
    filtered = run(PlateMatting(), images, plate)
    assert mean_dtssd(filtered, alphas) <= 0.5 * mean_dtssd(single, alphas)
    err = lambda preds: np.mean([np.abs(p - a).mean() for p, a in zip(preds, alphas)])  # noqa: E731
    assert err(filtered) <= err(single) * 1.02  # steadier without being worse


def test_a_moving_subject_is_followed_without_lag():
    images, plate, alphas = frames([50.0 + 5 * t for t in range(8)], noise=2.0)
    single = run(PlateMatting(temporal=TemporalSettings(strength=0)), images, plate)
    filtered = run(PlateMatting(), images, plate)

    def centroid_x(a: np.ndarray) -> float:
        return float((a.sum(axis=0) * np.arange(W)).sum() / a.sum())

    for t in range(1, 8):  # a lagging matte would sit behind the truth by a good part of 5 px a frame
        assert abs(centroid_x(filtered[t]) - centroid_x(alphas[t])) < 0.3
        assert np.abs(filtered[t] - alphas[t]).mean() <= np.abs(single[t] - alphas[t]).mean() + 2e-3


def test_the_filter_is_deterministic_and_restarts_on_reset():
    images, plate, _ = frames([80.0] * 4, noise=4.0)
    method = PlateMatting()
    first = run(method, images, plate)
    method.reset()
    second = run(method, images, plate)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert np.array_equal(first[0], PlateMatting(temporal=TemporalSettings(strength=0))(images[0], plate).alpha)


def test_the_gate_follows_the_formula_and_the_camera_motion():
    s = TemporalSettings(strength=0.8, still=3.0, moving=10.0, blur=0.0, reach=0)
    f = TemporalFilter(s)
    frame0 = np.full((8, 12, 3), 100, np.uint8)
    frame1 = frame0.copy()
    frame1[:, 6:] += np.array([0, 6, 2], np.uint8)  # right half changes by 6 levels (max channel)
    a0, a1 = np.full((8, 12), 0.2, np.float32), np.full((8, 12), 0.6, np.float32)
    fg = np.full((8, 12, 3), 50, np.uint8)
    f(frame0, a0, fg)
    out, _ = f(frame1, a1, fg)
    w_right = 0.8 * (10 - 6) / (10 - 3)
    assert out[:, :5] == pytest.approx(0.8 * 0.2 + 0.2 * 0.6, abs=1e-6)  # unchanged: weight 0.8
    assert out[:, 7:] == pytest.approx(w_right * 0.2 + (1 - w_right) * 0.6, abs=1e-6)
    # With reach 4 (2 px at half resolution) the change also gates its neighbours.
    near = TemporalFilter(TemporalSettings(strength=0.8, still=3.0, moving=10.0, blur=0.0, reach=4))
    near(frame0, a0, fg)
    out, _ = near(frame1, a1, fg)
    assert out[:, 3] == pytest.approx(w_right * 0.2 + (1 - w_right) * 0.6, abs=1e-6)  # 3 px from the change
    assert out[:, 0] == pytest.approx(0.8 * 0.2 + 0.2 * 0.6, abs=1e-6)
    # A camera that moved 2 px right: the previous matte is carried along before blending.
    g = TemporalFilter(TemporalSettings(strength=0.5, blur=0.0, reach=0))
    texture = cv2.resize(np.random.default_rng(0).integers(0, 255, (8, 10, 3), dtype=np.uint8), (40, 32),
                         interpolation=cv2.INTER_NEAREST)
    prev_alpha = np.zeros((32, 40), np.float32)
    prev_alpha[:, 10:20] = 0.5
    motion = np.array([[1, 0, 2], [0, 1, 0], [0, 0, 1]], np.float64)
    g(texture, prev_alpha, np.zeros((32, 40, 3), np.uint8))
    moved = cv2.warpAffine(texture, motion[:2].astype(np.float32), (40, 32), borderMode=cv2.BORDER_REPLICATE)
    out, _ = g(moved, np.zeros((32, 40), np.float32), np.zeros((32, 40, 3), np.uint8), motion)
    assert out[10, 13] == pytest.approx(0.25) and out[10, 21] == pytest.approx(0.25)  # 0.5 * 0.5, shifted by 2
    assert out[10, 11] == pytest.approx(0.0)
