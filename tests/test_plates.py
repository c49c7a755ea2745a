"""Background plates B': Background Matting's noise/gamma statistics over many draws, extras, shadow."""
from __future__ import annotations

import numpy as np

from mattecli.data.plates import PlateSpec, cast_shadow, gamma_lut, make_plate, perturb_background
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
