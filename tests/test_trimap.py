"""Trimaps: values exactly {0, 128, 255}, band widths from the erosion/dilation radii, seeding."""
from __future__ import annotations

import numpy as np
import pytest

from mattecli.data.trimap import TrimapSpec, normalise_trimap, random_trimap, trimap_from_alpha
from mattecli.seeding import rng_for


def _disk(size: int = 201, radius: int = 60) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return np.where((yy - size // 2) ** 2 + (xx - size // 2) ** 2 <= radius ** 2, 255, 0).astype(np.uint8)


def _square(size: int = 201, half: int = 60) -> np.ndarray:
    alpha = np.zeros((size, size), np.uint8)
    c = size // 2
    alpha[c - half:c + half + 1, c - half:c + half + 1] = 255
    return alpha


def _radius_along_row(mask: np.ndarray) -> int:
    row = mask[mask.shape[0] // 2]
    return int(np.count_nonzero(row)) // 2


@pytest.mark.parametrize("ek,ei,dk,di", [(3, 5, 3, 5), (5, 4, 3, 10), (3, 1, 5, 7)])
def test_band_width_matches_erosion_and_dilation_radii(ek, ei, dk, di):
    # a square: along its middle row the band is exactly iterations x kernel reach (a disk's
    # curvature would add a pixel here and there)
    alpha = _square()
    tri = trimap_from_alpha(alpha, ek, ei, dk, di)
    assert set(np.unique(tri)) == {0, 128, 255}
    disk = trimap_from_alpha(_disk(), ek, ei, dk, di)
    assert set(np.unique(disk)) == {0, 128, 255}
    assert abs(_radius_along_row(disk == 255) - (60 - ei * ((ek - 1) // 2))) <= ei
    r = _radius_along_row(alpha == 255)
    # a k x k ellipse reaches (k-1)//2 px per iteration along the axes
    assert _radius_along_row(tri == 255) == r - ei * ((ek - 1) // 2)
    assert _radius_along_row(tri > 0) == r + di * ((dk - 1) // 2)


def test_fractional_alpha_is_unknown_and_outside_is_background():
    alpha = _disk()
    alpha[100, 40:45] = 77  # a soft edge pixel inside the disk
    tri = trimap_from_alpha(alpha, 3, 1, 3, 1)
    assert (tri[100, 40:45] == 128).all()
    assert tri[0, 0] == 0 and tri[100, 100] == 255


def test_random_trimap_is_seeded_and_within_ranges():
    alpha = _square()
    spec = TrimapSpec(kernel=(3, 3), iterations=(2, 6))
    a = random_trimap(alpha, rng_for(1, "trimap", "x_0"), spec)
    b = random_trimap(alpha, rng_for(1, "trimap", "x_0"), spec)
    assert np.array_equal(a, b)
    widths = set()
    for k in range(40):
        t = random_trimap(alpha, rng_for(1, "trimap", f"x_{k}"), spec)
        inner = 60 - _radius_along_row(t == 255)
        outer = _radius_along_row(t > 0) - 60
        assert 2 <= inner <= 6 and 2 <= outer <= 6
        widths.add((inner, outer))
    assert len(widths) > 5  # erosion and dilation are drawn independently


def test_spec_rejects_bad_ranges():
    with pytest.raises(ValueError):
        TrimapSpec(kernel=(0, 3))
    with pytest.raises(ValueError):
        TrimapSpec(iterations=(5, 2))


def test_normalise_trimap_nearest_class():
    t = np.array([[0, 63, 64, 127, 128, 191, 192, 255]], np.uint8)
    out, changed = normalise_trimap(t)
    assert out.tolist() == [[0, 0, 128, 128, 128, 128, 255, 255]]
    assert changed == 5


def _official_generate_trimap(alpha: np.ndarray, k: int) -> np.ndarray:
    """Background Matting's ``generate_trimap(alpha, K, K, False)`` written out with cv2's defaults."""
    import cv2

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    fg = cv2.erode(np.equal(alpha, 255).astype(np.float32), kernel, iterations=k)
    unknown = cv2.dilate(np.not_equal(alpha, 0).astype(np.float32), kernel, iterations=2 * k)
    return (fg * 255 + (unknown - fg) * 128).astype(np.uint8)


def test_bgm_recipe_trimap_is_the_official_generate_trimap():
    from mattecli.families.bgm.family import trimap_spec
    from mattecli.train.recipe import load_recipe

    rng = np.random.default_rng(4)
    alpha = np.zeros((90, 120), np.uint8)
    alpha[20:90, 10:70] = 255                        # touches the bottom border
    alpha[30:50, 70:100] = rng.integers(0, 256, (20, 30)).astype(np.uint8)  # a soft region
    alpha[0:6, 0:120:7] = 255                        # thin strands on the top border
    spec = trimap_spec(load_recipe("bgm"))
    for seed in range(3):
        got = random_trimap(alpha, rng_for(seed, "t"), spec)
        np.testing.assert_array_equal(got, _official_generate_trimap(alpha, 5))
    # the dilation is twice the erosion: the band outside a straight edge is 2K = 10 px, inside K = 5
    row = random_trimap(alpha, rng_for(0, "t"), spec)[60]
    assert np.count_nonzero(row[70:] == 128) == 10 and np.count_nonzero(row[:70] == 128) == 10 + 5 + 5
