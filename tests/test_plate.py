"""The background-plate method: matte, foreground, guided filter, alignment, exposure, trimap."""
from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest
from video_clips import disc_alpha, textured_plate

from mattecli.inference.plate import (PlateAligner, PlateMatting, PlateSettings, alpha_from_plate,
                                      fast_guided_filter, foreground_from_plate, match_exposure,
                                      prepare_plate, trimap_from_plate, warp_plate)

H, W = 120, 160
FG_COLOUR = np.array([210, 40, 50], np.float32)


def scene(alpha: np.ndarray, plate: np.ndarray, fg: np.ndarray | None = None) -> np.ndarray:
    f = np.broadcast_to(FG_COLOUR, plate.shape) if fg is None else fg.astype(np.float32)
    return np.clip(alpha[:, :, None] * f + (1 - alpha[:, :, None]) * plate + 0.5, 0, 255).astype(np.uint8)


def naive_guided_filter(guide: np.ndarray, src: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He et al.'s colour guided filter written out window by window (mirror-padded box means)."""
    g = guide.astype(np.float64) / 255.0
    p = src.astype(np.float64)
    h, w = p.shape

    def mean(x: np.ndarray) -> np.ndarray:
        pad = np.pad(x, [(r, r), (r, r)] + [(0, 0)] * (x.ndim - 2), mode="symmetric")
        out = np.empty_like(x)
        for y in range(h):
            for xx in range(w):
                out[y, xx] = pad[y:y + 2 * r + 1, xx:xx + 2 * r + 1].mean(axis=(0, 1))
        return out

    mg, mp = mean(g), mean(p)
    a = np.empty((h, w, 3))
    gg = mean(np.einsum("hwi,hwj->hwij", g, g).reshape(h, w, 9)).reshape(h, w, 3, 3)
    gp = mean(g * p[:, :, None])
    for y in range(h):
        for x in range(w):
            cov = gg[y, x] - np.outer(mg[y, x], mg[y, x]) + eps * np.eye(3)
            a[y, x] = np.linalg.solve(cov, gp[y, x] - mg[y, x] * mp[y, x])
    b = mp - (a * mg).sum(axis=2)
    return (mean(a) * g).sum(axis=2) + mean(b)


def test_fast_guided_filter_at_scale_one_is_the_guided_filter():
    rng = np.random.default_rng(1)
    guide = rng.integers(0, 256, (14, 17, 3), dtype=np.uint8)
    src = rng.random((14, 17)).astype(np.float32)
    ours = fast_guided_filter(guide, src, radius=2, eps=1e-2, scale=1)
    np.testing.assert_allclose(ours, naive_guided_filter(guide, src, 2, 1e-2), atol=2e-4)


def test_matte_of_a_synthetic_frame_matches_the_known_alpha():
    plate = textured_plate(H, W)
    alpha = disc_alpha(H, W, 80, 60, 30, soft=2.0)
    frame = scene(alpha, plate)
    est = alpha_from_plate(frame, plate)
    assert est.dtype == np.float32 and est.shape == (H, W)
    far = disc_alpha(H, W, 80, 60, 40, soft=1.0) == 0  # 10 px outside the disc
    core = disc_alpha(H, W, 80, 60, 22, soft=1.0) == 1
    assert (est[far] == 0).all() and (est[core] == 1).all()
    assert np.abs(est - alpha).mean() < 0.01  # SAD over the frame: a thin edge band only
    assert np.abs(est - alpha)[np.abs(est - alpha) > 0].size < 0.05 * H * W


def test_foreground_follows_the_compositing_equation():
    plate = textured_plate(H, W, seed=2)
    rng = np.random.default_rng(3)
    fg_true = cv2.GaussianBlur(rng.integers(0, 256, (H, W, 3), dtype=np.uint8), (0, 0), 3).astype(np.float32)
    alpha = disc_alpha(H, W, 80, 60, 35, soft=16.0)  # a wide soft edge, all alphas present
    frame = scene(alpha, plate, fg_true)
    fg = foreground_from_plate(frame, plate, alpha, min_alpha=0.15)
    firm = alpha >= 0.5  # the frame is rounded to integers, so F's error is at most 0.5 / alpha
    assert np.abs(fg[firm].astype(np.float32) - fg_true[firm]).max() <= 1.5
    np.testing.assert_array_equal(fg[alpha == 1], frame[alpha == 1])
    # Over a new background the estimated F beats the raw frame (which keeps the old plate's colour).
    new_bg = np.full((H, W, 3), (0, 200, 255), np.float32)
    a = alpha[:, :, None]
    truth = a * fg_true + (1 - a) * new_bg
    with_f = a * fg + (1 - a) * new_bg
    with_raw = a * frame + (1 - a) * new_bg
    edge = (alpha > 0) & (alpha < 1)
    assert np.abs(with_f - truth)[edge].mean() < 0.2 * np.abs(with_raw - truth)[edge].mean()


def test_plate_matting_end_to_end_beats_raw_compositing():
    plate = textured_plate(H, W, seed=4)
    alpha = disc_alpha(H, W, 70, 64, 32, soft=4.0)
    frame = scene(alpha, plate)
    result = PlateMatting()(frame, plate)
    new_bg = np.zeros((H, W, 3), np.float32)
    truth = alpha[:, :, None] * FG_COLOUR + (1 - alpha[:, :, None]) * new_bg
    ours = result.alpha[:, :, None] * result.fg + (1 - result.alpha[:, :, None]) * new_bg
    assert np.abs(ours - truth).mean() < 2.0  # grey levels, over the whole frame


def homography_for(h: int, w: int) -> np.ndarray:
    """A small hand-held-like motion: 2 degrees rotation, 3% zoom, a shift and a little perspective."""
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), 2.0, 1.03)
    m = np.vstack([rot, [0, 0, 1]])
    m[0, 2] += 9
    m[1, 2] -= 6
    m[2, :2] = [1e-5, -2e-5]
    return m


def test_alignment_recovers_a_known_homography():
    h, w = 360, 480
    plate = textured_plate(h, w, seed=5)
    true_h = homography_for(h, w)
    frame = cv2.warpPerspective(plate, true_h, (w, h), borderMode=cv2.BORDER_REFLECT)
    found = PlateAligner().estimate(frame, plate)
    assert found.found and found.inliers >= 20
    corners = np.float32([[0, 0], [w, 0], [w, h], [0, h], [w / 2, h / 2]]).reshape(-1, 1, 2)
    err = cv2.perspectiveTransform(corners, found.homography) - cv2.perspectiveTransform(corners, true_h)
    assert np.abs(err).max() < 1.5  # px
    warped = warp_plate(plate, frame, found.homography)
    inner = np.s_[30:-30, 30:-30]
    assert np.abs(warped[inner].astype(int) - frame[inner]).mean() < 3


def test_no_homography_warns_and_uses_the_identity():
    plate = textured_plate(H, W, seed=6)
    blank = np.full_like(plate, 90)  # nothing to match
    with pytest.warns(UserWarning, match="using the identity"):
        used, alignment = prepare_plate(blank, plate, align=True, exposure=False)
    assert not alignment.found
    np.testing.assert_array_equal(alignment.homography, np.eye(3))
    np.testing.assert_array_equal(used, plate)


def test_exposure_matching_undoes_a_gain_and_bias():
    plate = textured_plate(H, W, seed=7)
    alpha = disc_alpha(H, W, 40, 40, 20)
    darker = np.clip(plate.astype(np.float32) * [0.8, 0.85, 0.9] + [12, 5, -4], 0, 255).astype(np.uint8)
    frame = scene(alpha, darker)
    matched = match_exposure(frame, plate)
    bg = alpha == 0
    before = np.abs(plate.astype(int) - darker)[bg].mean()
    after = np.abs(matched.astype(int) - darker)[bg].mean()
    assert before > 8 and after < 1.5


def test_trimap_from_plate_bands_the_edge():
    plate = textured_plate(H, W, seed=8)
    alpha = disc_alpha(H, W, 80, 60, 30, soft=2.0)
    trimap = trimap_from_plate(scene(alpha, plate), plate, band=4)
    assert trimap.dtype == np.uint8 and set(np.unique(trimap)) == {0, 128, 255}
    assert (trimap[disc_alpha(H, W, 80, 60, 24, soft=1.0) == 1] == 255).all()
    assert (trimap[disc_alpha(H, W, 80, 60, 37, soft=1.0) == 0] == 0).all()
    edge = (alpha > 0) & (alpha < 1)
    assert (trimap[edge] == 128).all()
    yy, xx = np.mgrid[0:H, 0:W]
    radius = np.hypot(xx - 80, yy - 60)
    ring = trimap == 128
    assert radius[ring].min() < 27 and radius[ring].max() > 33  # at least ~4 px each side of r = 30


def test_plate_of_another_size_needs_alignment():
    plate = textured_plate(H, W)
    with pytest.raises(ValueError, match="does not match"):
        PlateMatting()(textured_plate(H + 2, W), plate)


def test_settings_are_checked():
    with pytest.raises(ValueError):
        PlateSettings(low=30, high=20)
    with pytest.raises(ValueError, match="detect_min"):
        PlateSettings(detect_min=12)  # above the fixed threshold of 10
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PlateSettings(low=0, high=1)


def test_projection_beats_the_ramp_and_the_crude_key_on_strands_and_similar_colours():
    """A saturated subject with a faint strand, and a subject close to the background's colour:
    the projected alpha (the default) is far nearer the truth than the previous ramp and the crude key."""
    import cv2

    from mattecli.inference.plate import PlateSettings, alpha_from_plate

    rng = np.random.default_rng(4)
    h, w = 180, 240
    bg = cv2.resize(rng.integers(40, 200, (4, 5, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    alpha = np.zeros((h, w), np.float32)
    cv2.circle(alpha, (110, 100), 55, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 1.5)
    cv2.line(alpha, (150, 60), (220, 10), 0.4, 1)
    errors = {}
    for name, colour in (("distinct", np.array([230.0, 40, 30])), ("similar", None)):
        fg = cv2.GaussianBlur(bg, (0, 0), 30) + np.array([22.0, -16, 10]) if colour is None else np.broadcast_to(colour, bg.shape)
        image = np.clip(alpha[:, :, None] * fg + (1 - alpha[:, :, None]) * bg + rng.normal(0, 1.5, bg.shape), 0, 255)
        image = image.astype(np.uint8)
        plate = np.clip(bg + rng.normal(0, 1.5, bg.shape), 0, 255).astype(np.uint8)
        near = cv2.dilate((alpha > 0).astype(np.uint8), np.ones((21, 21), np.uint8)) > 0
        crude = np.clip((cv2.absdiff(image, plate).max(axis=2).astype(np.float32) - 6) / 20, 0, 1)
        for method, pred in (("projection", alpha_from_plate(image, plate)),
                             ("ramp", alpha_from_plate(image, plate, PlateSettings(mode="ramp"))), ("crude", crude)):
            errors[name, method] = float(np.abs(pred - alpha)[near].mean())
    for name in ("distinct", "similar"):
        assert errors[name, "projection"] < 0.6 * errors[name, "ramp"], errors
    assert errors["distinct", "projection"] < 0.6 * errors["distinct", "crude"], errors
    assert errors["similar", "projection"] < errors["similar", "crude"], errors  # the hardest case: a smaller margin
    with pytest.raises(ValueError):
        PlateSettings(mode="other")


def test_a_patch_of_subject_coloured_like_the_plate_stays_subject_and_a_clear_gap_stays_background():
    """Where the subject's own colour matches the plate behind it the frame equals the plate: a hole
    no difference can tell from a gap. When the subject around it is itself close to the plate's
    colour, it is subject (alpha 1); a gap in a saturated subject stays background, also under the
    optional depth rule, whose faint-rim guard keeps a clear-edged gap open."""
    rng = np.random.default_rng(7)
    h, w = 240, 320
    bg = cv2.resize(rng.integers(60, 200, (5, 6, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    alpha = np.zeros((h, w), np.float32)
    cv2.circle(alpha, (110, 120), 90, 1.0, -1)  # a subject coloured close to the background ...
    cv2.circle(alpha, (250, 120), 60, 1.0, -1)  # ... and a saturated one with a true gap
    yy, xx = np.mgrid[0:h, 0:w]
    patch = np.hypot(xx - 110, yy - 120) < 12
    gap = np.hypot(xx - 250, yy - 120) < 9
    alpha[gap] = 0.0
    alpha = cv2.GaussianBlur(alpha, (0, 0), 1.0)
    fg = bg + np.array([13.0, -9.0, 7.0])
    fg[xx > 180] = (230.0, 40.0, 30.0)
    fg[patch] = bg[patch]  # the subject's colour here is the background's
    image = np.clip(alpha[:, :, None] * fg + (1 - alpha[:, :, None]) * bg + rng.normal(0, 1.0, bg.shape), 0, 255)
    plate = np.clip(bg + rng.normal(0, 1.0, bg.shape), 0, 255).astype(np.uint8)
    image = image.astype(np.uint8)
    core_of_gap = np.hypot(xx - 250, yy - 120) < 5
    filled = alpha_from_plate(image, plate)
    assert filled[patch].mean() > 0.95, filled[patch].mean()
    assert filled[core_of_gap].max() < 0.1, filled[core_of_gap].max()
    unfilled = alpha_from_plate(image, plate, PlateSettings(hole_fraction=0.0))
    assert unfilled[patch].mean() < 0.5, unfilled[patch].mean()  # without the rule: a hole
    deep = alpha_from_plate(image, plate, PlateSettings(hole_depth=32.0))
    assert deep[core_of_gap].max() < 0.1, deep[core_of_gap].max()  # a clear-edged gap stays open
    unguarded = alpha_from_plate(image, plate, PlateSettings(hole_depth=32.0, hole_edge=1000.0))
    assert unguarded[core_of_gap].mean() > 0.9, unguarded[core_of_gap].mean()  # ... by the rim guard


def test_detection_threshold_follows_the_frames_noise_between_its_bounds():
    """The threshold is 7x the mean of the lower half of the max-channel differences (computed here
    by sorting), clipped to [detect_min, detect]; noisier footage keeps the fixed threshold."""
    from mattecli.inference.plate import detection_threshold

    rng = np.random.default_rng(3)
    for sigma, expect_fixed in ((0.6, False), (2.0, False), (6.0, True)):
        dmax = np.clip(np.abs(rng.normal(0, sigma, (90, 120))) + 0.5, 0, 255).astype(np.uint8)
        dmax[30:60, 40:80] = 80  # a subject
        values = np.sort(dmax.ravel())
        median = values[(values.size - 1) // 2]
        noise = values[values <= median].mean()
        expected = float(np.clip(7.0 * noise, 6.0, 10.0))
        got = detection_threshold(dmax, PlateSettings())
        assert got == pytest.approx(expected, abs=1e-6)
        assert (got == 10.0) == expect_fixed, (sigma, got)
        assert detection_threshold(dmax, PlateSettings(detect_noise=0)) == 10.0


def test_a_faint_subject_on_clean_footage_is_found():
    """A subject only 8 levels from the plate on clean footage: the noise-scaled threshold finds it,
    the fixed one of 10 levels does not."""
    rng = np.random.default_rng(5)
    h, w = 160, 200
    bg = cv2.resize(rng.integers(60, 190, (4, 5, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    alpha = cv2.GaussianBlur(disc_alpha(h, w, 100, 80, 45, soft=1.0), (0, 0), 0.5)
    fg = bg + np.array([8.0, -6.0, 5.0])
    image = np.clip(alpha[:, :, None] * fg + (1 - alpha[:, :, None]) * bg + rng.normal(0, 0.8, bg.shape), 0, 255)
    plate = np.clip(bg + rng.normal(0, 0.8, bg.shape), 0, 255).astype(np.uint8)
    image = image.astype(np.uint8)
    inside = disc_alpha(h, w, 100, 80, 25, soft=1.0) >= 1.0  # the core: deeper than 16 px
    scaled = alpha_from_plate(image, plate)
    fixed = alpha_from_plate(image, plate, PlateSettings(detect_noise=0))
    assert scaled[inside].mean() > 0.9, scaled[inside].mean()
    assert fixed[inside].mean() < 0.5, fixed[inside].mean()
