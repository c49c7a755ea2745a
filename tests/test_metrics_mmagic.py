"""``convention="mmagic"`` against a direct transcription of mmagic 1.x's metric code."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from mattecli.metrics import compute_metrics
from test_metrics import random_case, ref_kernel


def mmagic_reference(pred_u8, gt_u8, trimap) -> dict[str, float]:
    """mmagic's SAD, MattingMSE, GradientError, ConnectivityError, step by step (masked pred)."""
    assert not ((pred_u8[trimap == 0] != 0).any() or (pred_u8[trimap == 255] != 255).any())
    pred, gt = pred_u8 / 255.0, gt_u8 / 255.0
    out = {"sad": np.abs(pred - gt).sum() / 1000}
    weight = (trimap == 128).sum()
    out["mse"] = ((pred - gt) ** 2).sum() / weight if weight else 0
    hx = np.array(ref_kernel())
    amps = []
    for a in (gt, pred):
        normed = np.zeros_like(a)
        cv2.normalize(a, normed, 1.0, 0.0, cv2.NORM_MINMAX)
        gx = cv2.filter2D(normed, -1, hx, borderType=cv2.BORDER_REPLICATE)
        gy = cv2.filter2D(normed, -1, hx.T, borderType=cv2.BORDER_REPLICATE)
        amps.append(np.sqrt(gx ** 2 + gy ** 2))
    out["grad"] = ((amps[0] - amps[1]) ** 2 * (trimap == 128)).sum() / 1000
    steps = np.arange(0, 1 + 0.1, 0.1)
    round_down = -np.ones_like(gt)
    for i in range(1, len(steps)):
        inter = ((gt >= steps[i]) & (pred >= steps[i])).astype(np.uint8)
        _, labels, stats, _ = cv2.connectedComponentsWithStats(inter, connectivity=4)
        size = stats[1:, -1]
        omega = np.zeros_like(gt)
        if len(size):
            omega[labels == np.argmax(size) + 1] = 1
        round_down[(round_down == -1) & (omega == 0)] = steps[i - 1]
    round_down[round_down == -1] = 1
    dg, dp = gt - round_down, pred - round_down
    phi_g, phi_p = 1 - dg * (dg >= 0.15), 1 - dp * (dp >= 0.15)
    out["conn"] = np.sum(np.abs(phi_g - phi_p) * (trimap == 128)) / 1000
    return out


def masked(pred, trimap):
    out = pred.copy()
    out[trimap == 0] = 0
    out[trimap == 255] = 255
    return out


@pytest.mark.parametrize("seed", range(5))
def test_matches_mmagic_on_masked_predictions(seed):
    pred, gt, trimap = random_case(seed, 40, 52)
    pred = masked(pred, trimap)
    got = compute_metrics(pred, gt, trimap, convention="mmagic")
    want = mmagic_reference(pred, gt, trimap)
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=1e-9, abs=1e-15), k


def test_unmasked_predictions_are_scored_as_mmagic_models_mask_them():
    pred, gt, trimap = random_case(11, 40, 52)
    assert (pred[trimap == 0] != 0).any()
    got = compute_metrics(pred, gt, trimap, convention="mmagic")
    want = mmagic_reference(masked(pred, trimap), gt, trimap)
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=1e-9, abs=1e-15), k


def test_sad_and_mse_count_the_known_region_in_mmagic_only():
    # A grey ground truth inside the known background: MATLAB ignores it, mmagic counts it.
    gt = np.array([[10, 100, 200]], np.uint8)
    pred = np.array([[0, 110, 200]], np.uint8)
    trimap = np.array([[0, 128, 128]], np.uint8)
    matlab = compute_metrics(pred, gt, trimap, ["sad", "mse"])
    mmagic = compute_metrics(pred, gt, trimap, ["sad", "mse"], "mmagic")
    assert matlab["sad"] == pytest.approx(10 / 255 / 1000, rel=1e-6)
    assert mmagic["sad"] == pytest.approx(20 / 255 / 1000, rel=1e-12)
    assert matlab["mse"] == pytest.approx((10 / 255) ** 2 / 2, rel=1e-6)
    assert mmagic["mse"] == pytest.approx(((10 / 255) ** 2 * 2) / 2, rel=1e-12)
