"""Background plates B': Background Matting's noise/gamma statistics over many draws, extras, shadow."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from mattecli.data.plates import PlateSpec, cast_shadow, defocus, gamma_lut, make_plate, misalign, perturb_background
from mattecli.seeding import rng_for


def test_noise_and_gamma_draw_statistics():
    bg = np.full((8, 8, 3), 128, np.uint8)
    draws = [perturb_background(bg, rng_for(0, "plate", i))[1] for i in range(4000)]
    noise = [d for d in draws if "noise_mean" in d]
    gammas = np.array([d["gamma"] for d in draws if "gamma" in d])
    assert abs(len(noise) / len(draws) - 0.4) < 0.03
    means = {d["noise_mean"] for d in noise}
    sigmas = {d["noise_sigma"] for d in noise}
    assert means == set(range(-7, 7)) and sigmas == {2, 3, 4, 5}
    assert abs(gammas.mean() - 1.0) < 0.01 and abs(gammas.std() - 0.12) < 0.01


def test_noise_plate_has_the_drawn_mean_and_sigma():
    bg = np.full((200, 200, 3), 100, np.uint8)
    for i in range(60):
        plate, d = perturb_background(bg, rng_for(1, "p", i))
        diff = plate.astype(np.float64) - 100
        if "noise_mean" in d:
            # truncation toward zero shifts the mean by about -0.5 for positive values
            assert abs(diff.mean() - (d["noise_mean"] - 0.5)) < 0.15
            assert abs(diff.std() - d["noise_sigma"]) < 0.2
        else:
            want = round(255 * (100 / 255) ** d["gamma"])
            assert (plate == want).all()


def test_gamma_lut_matches_formula_and_is_monotonic():
    lut = gamma_lut(1.2)
    v = np.arange(256)
    assert np.array_equal(lut, np.minimum(np.rint(255 * (v / 255) ** 1.2), 255).astype(np.uint8))
    assert (np.diff(lut.astype(int)) >= 0).all() and lut[0] == 0 and lut[255] == 255
    assert np.array_equal(gamma_lut(1.0), v.astype(np.uint8))


def test_plate_seeded_and_extras_change_it():
    rng = np.random.default_rng(0)
    bg = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    a = make_plate(bg, rng_for(3, "plate", "x"))
    assert np.array_equal(a, make_plate(bg, rng_for(3, "plate", "x")))
    spec = PlateSpec(shift=True, blur=True)
    changed = sum(not np.array_equal(make_plate(bg, rng_for(3, "plate", i)), make_plate(bg, rng_for(3, "plate", i), spec))
                  for i in range(40))
    assert 10 < changed < 40  # each extra applies with probability 0.3


def test_shadow_only_darkens_and_follows_probability():
    bg = np.full((60, 60, 3), 200, np.uint8)
    alpha = np.zeros((60, 60), np.uint8)
    alpha[15:45, 15:45] = 255
    shadowed = 0
    for i in range(200):
        out = cast_shadow(bg, alpha, rng_for(0, "shadow", i))
        assert (out <= bg).all() and (out >= 200 - 0.3 * 255 - 1).all()
        shadowed += not np.array_equal(out, bg)
    assert 40 < shadowed < 80


def test_shift_rotates_within_a_degree_and_translates_within_one_percent():
    # On a linear ramp bilinear warping is exact, so the warped plate is again a plane whose
    # gradient is the original's rotated by the drawn angle and whose offset is the translation.
    h, w = 120, 160
    yy, xx = np.mgrid[:h, :w].astype(np.float64)
    ramp = 20 + 0.9 * xx + 0.4 * yy
    image = np.repeat(ramp[:, :, None], 3, axis=2).round().astype(np.uint8)
    inner = np.s_[10:-10, 10:-10]  # away from the reflected borders
    design = np.stack([xx[inner].ravel(), yy[inner].ravel(), np.ones(xx[inner].size)], axis=1)
    angles = []
    for i in range(20):
        out = misalign(image, rng_for(0, "shift", i)).astype(np.float64)[:, :, 0]
        (gx, gy, c), *_ = np.linalg.lstsq(design, out[inner].ravel(), rcond=None)
        assert np.hypot(gx, gy) == pytest.approx(np.hypot(0.9, 0.4), rel=0.01)  # a rotation, no scaling
        angle = np.degrees(np.arctan2(gy, gx) - np.arctan2(0.4, 0.9))
        assert abs(angle) <= 1.05
        angles.append(angle)
        # the centre moves by at most 1% of the size in x and y: its value changes by at most that much
        centre = gx * w / 2 + gy * h / 2 + c
        assert abs(centre - ramp[h // 2, w // 2]) <= 0.9 * 0.01 * w + 0.4 * 0.01 * h + 1.0
    assert np.ptp(angles) > 0.5  # the angle is drawn, not fixed


def test_blur_is_a_gaussian_of_sigma_half_to_one_and_a_half_pixels():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    sharp, soft = (cv2.GaussianBlur(image, (0, 0), s).astype(np.float64).std() for s in (0.5, 1.5))
    for i in range(10):
        out = defocus(image, rng_for(0, "blur", i))
        assert out.mean() == pytest.approx(image.mean(), abs=1.0)  # a blur keeps the mean
        assert soft - 0.5 <= out.astype(np.float64).std() <= sharp + 0.5  # between sigma 1.5 and 0.5


def test_shadow_falls_near_the_subject_and_is_at_most_30_percent():
    bg = np.full((80, 80, 3), 200, np.uint8)
    alpha = np.zeros((80, 80), np.uint8)
    alpha[30:50, 30:50] = 255
    seen = 0
    for i in range(60):
        out = cast_shadow(bg, alpha, rng_for(1, "shadow", i))
        dark = (bg.astype(np.float64) - out)[:, :, 0]
        if not dark.any():
            continue
        seen += 1
        assert dark.max() <= 0.3 * 255 + 1
        assert np.array_equal(dark, (bg.astype(np.float64) - out)[:, :, 2])  # grey: the same on every channel
        yy, xx = np.mgrid[:80, :80]
        cy, cx = (dark * yy).sum() / dark.sum(), (dark * xx).sum() / dark.sum()
        assert abs(cy - 39.5) < 0.2 * 80 + 4 and abs(cx - 39.5) < 0.2 * 80 + 4  # translation within 20%
    assert seen > 5
