"""Video metrics against values computed here from the published formulas (RVM's evaluate_lr.py,
Erofeev et al.'s MESSDdt), with loops and SciPy instead of the library's OpenCV paths."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from scipy import ndimage

from mattecli.metrics.video import (VIDEO_METRICS, check_video_metrics, dtssd, ground_truth_flow, messddt,
                                    plot_per_frame, score_frames, warp_by_flow)

H, W = 40, 56


def blob(cx: float, cy: float, r: float = 10.0, soft: float = 3.0) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    return np.clip((r - np.hypot(xx - cx, yy - cy)) / soft + 0.5, 0, 1)


def u8(a: np.ndarray) -> np.ndarray:
    return np.clip(a * 255 + 0.5, 0, 255).astype(np.uint8)


def clip(n: int = 4, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Ground truth: a soft disc moving right 3 px a frame; prediction: noisy, with a flickering patch."""
    rng = np.random.default_rng(seed)
    gts, preds = [], []
    for t in range(n):
        g = blob(18 + 3 * t, 20)
        p = np.clip(g + rng.normal(0, 0.08, g.shape) * (g > 0.02), 0, 1)
        if t % 2:
            p[5:9, 40:46] = 0.7
        gts.append(u8(g))
        preds.append(u8(p))
    return preds, gts


# --- the formulas, written out ----------------------------------------------------------------

def rvm_grad(pred: np.ndarray, true: np.ndarray, sigma: float = 1.4) -> float:
    half = math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * 1e-2)))
    size = 2 * half + 1
    g = lambda x: math.exp(-x * x / (2 * sigma * sigma)) / (sigma * math.sqrt(2 * math.pi))  # noqa: E731
    kx = np.zeros((size, size))
    for i in range(size):
        for j in range(size):
            kx[i, j] = g(i - half) * (-(j - half) * g(j - half) / sigma ** 2)
    kx /= np.sqrt((kx ** 2).sum())
    ky = kx.T

    def magnitude(a: np.ndarray) -> np.ndarray:
        a = a.astype(np.float64)
        a = (a - a.min()) / (a.max() - a.min())
        gx = ndimage.correlate(a, kx, mode="nearest")
        gy = ndimage.correlate(a, ky, mode="nearest")
        return np.sqrt(gx ** 2 + gy ** 2)

    return float(((magnitude(true) - magnitude(pred)) ** 2).sum()) / 1000


def rvm_conn(pred: np.ndarray, true: np.ndarray) -> float:
    levels = [0.1 * k for k in range(11)]
    round_down = np.full(true.shape, -1.0)
    for i in range(1, 11):
        inter = (true >= levels[i]) & (pred >= levels[i])
        labels, count = ndimage.label(inter)  # 4-connectivity
        omega = np.zeros(true.shape, bool)
        if count:
            sizes = np.bincount(labels.ravel())[1:]
            omega = labels == 1 + int(np.argmax(sizes))
        round_down[(round_down == -1) & ~omega] = levels[i - 1]
    round_down[round_down == -1] = 1
    dt, dp = true - round_down, pred - round_down
    return float(np.abs((1 - dt * (dt >= 0.15)) - (1 - dp * (dp >= 0.15))).sum()) / 1000


def messddt_by_loops(p0, g0, p1, g1, flow, swap: bool = False) -> float:
    total = 0.0
    for y in range(H):
        for x in range(W):
            dx, dy = (int(round(float(flow[y, x, 0]))), int(round(float(flow[y, x, 1]))))
            if swap:  # the transposed grid of one public implementation
                dx, dy = dy, dx
            yy, xx = min(max(y + dy, 0), H - 1), min(max(x + dx, 0), W - 1)
            total += abs((p0[y, x] - g0[y, x]) ** 2 - (p1[yy, xx] - g1[yy, xx]) ** 2)
    return total / (H * W) * 1e3


# --- the tests -------------------------------------------------------------------------------

def test_every_metric_matches_the_formulas_frame_by_frame():
    preds, gts = clip()
    scores = score_frames(zip(preds, gts))
    assert scores.metrics == VIDEO_METRICS
    for t, row in enumerate(scores.frames):
        p, g = preds[t].astype(np.float32) / 255, gts[t].astype(np.float32) / 255
        assert row["mad"] == pytest.approx(np.abs(p - g).mean() * 1e3, rel=1e-6)
        assert row["mse"] == pytest.approx(((p - g) ** 2).mean() * 1e3, rel=1e-6)
        assert row["grad"] == pytest.approx(rvm_grad(p, g), rel=1e-5)
        assert row["conn"] == pytest.approx(rvm_conn(p, g), rel=1e-5, abs=1e-9)
        if t == 0:
            assert row["dtssd"] == 0 and row["messddt"] == 0
            continue
        pp, gp = preds[t - 1].astype(np.float32) / 255, gts[t - 1].astype(np.float32) / 255
        expected = math.sqrt((((p - pp) - (g - gp)).astype(np.float64) ** 2).sum() / p.size) * 100
        assert row["dtssd"] == pytest.approx(expected, rel=1e-6)
        flow = cv2.calcOpticalFlowFarneback(gts[t - 1], gts[t], None, 0.5, 5, 10, 2, 7, 1.5,
                                            cv2.OPTFLOW_FARNEBACK_GAUSSIAN)
        assert row["messddt"] == pytest.approx(messddt_by_loops(pp, gp, p, g, flow), rel=1e-6)
    mean = scores.mean()
    assert mean["dtssd"] == pytest.approx(np.mean([r["dtssd"] for r in scores.frames]))
    assert scores.frames[1]["conn"] > 0 and scores.frames[1]["grad"] > 0


def test_messddt_samples_row_y_plus_dy_and_column_x_plus_dx():
    """A subject moving right, and an error that moves with it: the motion-compensated error
    change is ~0 with the right axes, not with the swapped ones."""
    g0, g1 = blob(20, 20, r=12), blob(26, 20, r=12)  # 6 px to the right
    e0 = np.zeros((H, W))
    e0[14:18, 16:20] = 0.3  # an error patch on the subject...
    e1 = np.roll(e0, 6, axis=1)  # ...carried along by the motion
    p0, p1 = np.clip(g0 - e0, 0, 1), np.clip(g1 - e1, 0, 1)
    g0f, g1f, p0f, p1f = (u8(a).astype(np.float32) / 255 for a in (g0, g1, p0, p1))
    flow = ground_truth_flow(g0f, g1f)
    assert np.median(flow[..., 0][g0 > 0.5]) == pytest.approx(6, abs=1.0)  # dx: along the columns
    ours = messddt(p1f, p0f, g1f, g0f, flow)
    right = messddt_by_loops(p0f, g0f, p1f, g1f, flow)
    swapped = messddt_by_loops(p0f, g0f, p1f, g1f, flow, swap=True)
    assert ours == pytest.approx(right, rel=1e-6)
    assert swapped > 2 * right
    warped = warp_by_flow(np.arange(H * W, dtype=np.float64).reshape(H, W), np.dstack([np.full((H, W), 2.0),
                                                                                           np.full((H, W), -1.0)]))
    assert warped[10, 10] == 9 * W + 12  # (y - 1, x + 2)


def test_dtssd_is_zero_for_a_prediction_that_changes_as_the_truth_does():
    g0, g1 = blob(20, 20).astype(np.float32), blob(23, 20).astype(np.float32)
    offset = np.float32(0.1) * (blob(30, 20) > 0.3)  # a constant error: no flicker
    assert dtssd(g1 + offset, g0 + offset, g1, g0) == pytest.approx(0.0, abs=1e-5)
    assert dtssd(g1 + offset, g0, g1, g0) > 0


def test_metric_names_are_checked_and_the_plot_is_written(tmp_path):
    with pytest.raises(ValueError, match="sad"):
        check_video_metrics(["sad"])
    assert check_video_metrics(["messddt", "mad"]) == ("mad", "messddt")
    preds, gts = clip(3)
    scores = score_frames(zip(preds, gts), ["mad", "dtssd"])
    png = plot_per_frame(scores, tmp_path / "err.png")
    image = cv2.imread(str(png))
    assert image is not None and image.std() > 5  # drawn, not blank
    assert scores.to_csv().splitlines()[0] == "frame,mad,dtssd"
    assert scores.to_json()["mean"]["mad"] == pytest.approx(np.mean([f["mad"] for f in scores.frames]))
