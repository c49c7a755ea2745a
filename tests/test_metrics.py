"""The metrics against a slow, literal transcription of the DIM MATLAB code and hand-computed cases.

The reference below re-does every MATLAB step with Python scalars: its own kernel loops, its
own convolution loop with replicated borders, its own column-major 4-connected flood fill in
bwconncomp's discovery order, and MATLAB's single/double mixing (single arithmetic, comparisons
of a single with a double at double precision).
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np
import pytest

from mattecli.metrics import compute_metrics
from mattecli.metrics.connectivity import matlab_colon
from mattecli.metrics.gradient import gauss_factors

F32 = np.float32
# MATLAB's 0:0.1:1 (first half start + k*step, second half stop - (n-k)*step).
MATLAB_LEVELS = [0.0, 0.1, 0.2, 3 * 0.1, 0.4, 0.5, 1 - 4 * 0.1, 1 - 3 * 0.1, 1 - 2 * 0.1, 1 - 0.1, 1.0]


# --- the reference -------------------------------------------------------------------------

def ref_single_alpha(a: np.ndarray) -> list[list[np.float32]]:
    return [[F32(F32(int(v)) / F32(255)) for v in row] for row in a]


def ref_sad(pred, gt, trimap) -> float:
    total = 0.0
    for y in range(pred.shape[0]):
        for x in range(pred.shape[1]):
            if trimap[y, x] == 128:
                total += float(F32(abs(F32(int(pred[y, x])) - F32(int(gt[y, x])))) / F32(255))
    return total / 1000


def ref_mse(pred, gt, trimap) -> float:
    total, count = 0.0, 0
    for y in range(pred.shape[0]):
        for x in range(pred.shape[1]):
            if trimap[y, x] == 128:
                e = F32((F32(int(pred[y, x])) - F32(int(gt[y, x]))) / F32(255))
                total += float(F32(e * e))
                count += 1
    return total / count


def ref_kernel(sigma: float = 1.4) -> list[list[float]]:
    half = math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * 0.01)))
    gauss = lambda x: math.exp(-x ** 2 / (2 * sigma ** 2)) / (sigma * math.sqrt(2 * math.pi))
    dgauss = lambda x: -x * gauss(x) / sigma ** 2
    size = 2 * half + 1
    hx = [[gauss(i - half) * dgauss(j - half) for j in range(size)] for i in range(size)]
    norm = math.sqrt(sum(abs(v) * abs(v) for row in hx for v in row))
    return [[v / norm for v in row] for row in hx]


def ref_conv_replicate(img: list[list[float]], h: list[list[float]]) -> list[list[float]]:
    """imfilter(img, h, 'replicate', 'conv'): out(y,x) = sum h(i,j) img(y-(i-c), x-(j-c))."""
    rows, cols, c = len(img), len(img[0]), len(h) // 2
    clamp = lambda v, n: min(max(v, 0), n - 1)
    return [[sum(h[i][j] * img[clamp(y - (i - c), rows)][clamp(x - (j - c), cols)]
                 for i in range(len(h)) for j in range(len(h)))
             for x in range(cols)] for y in range(rows)]


def ref_mat2gray(a: np.ndarray) -> list[list[float]]:
    lo, hi = float(a.min()), float(a.max())
    if lo == hi:  # mat2gray returns the input as double, limited to [0, 1]
        return [[min(max(float(v), 0.0), 1.0) for v in row] for row in a]
    return [[(float(v) - lo) / (hi - lo) for v in row] for row in a]


def ref_grad(pred, gt, trimap) -> float:
    hx = ref_kernel()
    hy = [list(col) for col in zip(*hx)]
    amps = []
    for a in (pred, gt):
        img = ref_mat2gray(a)
        gx, gy = ref_conv_replicate(img, hx), ref_conv_replicate(img, hy)
        amps.append([[math.sqrt(gx[y][x] ** 2 + gy[y][x] ** 2) for x in range(len(img[0]))]
                     for y in range(len(img))])
    total = 0.0
    for y in range(pred.shape[0]):
        for x in range(pred.shape[1]):
            if trimap[y, x] == 128:
                e = F32(F32(amps[0][y][x]) - F32(amps[1][y][x]))
                total += float(F32(e * e))
    return total / 1000


def ref_bwconncomp4(mask: list[list[bool]]) -> list[list[tuple[int, int]]]:
    """Components in column-major discovery order, each a list of (y, x)."""
    rows, cols = len(mask), len(mask[0])
    seen = [[False] * cols for _ in range(rows)]
    comps = []
    for x in range(cols):
        for y in range(rows):
            if mask[y][x] and not seen[y][x]:
                comp, queue = [], deque([(y, x)])
                seen[y][x] = True
                while queue:
                    cy, cx = queue.popleft()
                    comp.append((cy, cx))
                    for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
                        if 0 <= ny < rows and 0 <= nx < cols and mask[ny][nx] and not seen[ny][nx]:
                            seen[ny][nx] = True
                            queue.append((ny, nx))
                comps.append(comp)
    return comps


def ref_conn(pred, gt, trimap) -> float:
    p, g = ref_single_alpha(pred), ref_single_alpha(gt)
    rows, cols = pred.shape
    l_map = [[-1.0] * cols for _ in range(rows)]
    for ii in range(1, len(MATLAB_LEVELS)):
        t = MATLAB_LEVELS[ii]
        inter = [[float(p[y][x]) >= t and float(g[y][x]) >= t for x in range(cols)] for y in range(rows)]
        comps = ref_bwconncomp4(inter)
        omega = set()
        if comps:
            max_id = 0
            for k, comp in enumerate(comps):  # max: the first of the largest
                if len(comp) > len(comps[max_id]):
                    max_id = k
            omega = set(comps[max_id])
        for y in range(rows):
            for x in range(cols):
                if l_map[y][x] == -1 and (y, x) not in omega:
                    l_map[y][x] = MATLAB_LEVELS[ii - 1]
    total = 0.0
    for y in range(rows):
        for x in range(cols):
            l = 1.0 if l_map[y][x] == -1 else l_map[y][x]
            phis = []
            for a in (p[y][x], g[y][x]):
                d = F32(a - F32(l))  # single - double: single arithmetic
                phis.append(F32(F32(1) - d * F32(float(d) >= 0.15)))
            if trimap[y, x] == 128:
                total += float(F32(abs(F32(phis[0] - phis[1]))))
    return total / 1000


def reference(pred, gt, trimap) -> dict[str, float]:
    return {"sad": ref_sad(pred, gt, trimap), "mse": ref_mse(pred, gt, trimap),
            "grad": ref_grad(pred, gt, trimap), "conn": ref_conn(pred, gt, trimap)}


# --- test data ------------------------------------------------------------------------------

def random_case(seed: int, h: int = 18, w: int = 22):
    """A small matte with a soft edge, holes, values landing on the levels, and a trimap."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    gt = np.clip((xx - w * rng.uniform(0.3, 0.6)) * rng.uniform(20, 60) + rng.normal(0, 20, (h, w)), 0, 255)
    gt = gt.round().astype(np.uint8)
    on_levels = rng.random((h, w)) < 0.2
    gt[on_levels] = rng.choice([51, 102, 153, 204, 255], on_levels.sum())
    pred = np.clip(gt.astype(int) + rng.integers(-60, 61, (h, w)), 0, 255).astype(np.uint8)
    pred[rng.random((h, w)) < 0.1] = 153
    trimap = np.full((h, w), 128, np.uint8)
    trimap[gt == 0] = 0
    trimap[(gt == 255) & (rng.random((h, w)) < 0.7)] = 255
    return pred, gt, trimap


def assert_close(got: dict, want: dict, rel: float = 1e-6, abs_: float = 1e-12) -> None:
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=rel, abs=abs_), (k, got[k], v)


# --- tests ----------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(6))
def test_matches_the_matlab_transcription(seed):
    pred, gt, trimap = random_case(seed)
    assert_close(compute_metrics(pred, gt, trimap), reference(pred, gt, trimap))


def test_matches_on_a_sparse_noisy_matte_with_many_components():
    rng = np.random.default_rng(42)
    gt = (rng.random((16, 20)) < 0.5).astype(np.uint8) * rng.integers(40, 256, (16, 20)).astype(np.uint8)
    pred = (rng.random((16, 20)) < 0.6).astype(np.uint8) * rng.integers(0, 256, (16, 20)).astype(np.uint8)
    trimap = np.where(rng.random((16, 20)) < 0.8, 128, 0).astype(np.uint8)
    assert_close(compute_metrics(pred, gt, trimap), reference(pred, gt, trimap))


def test_kernel_factors_match_the_published_values():
    smooth, deriv = gauss_factors(1.4)
    assert len(smooth) == 9
    np.testing.assert_allclose(smooth[:5], [0.010716, 0.063906, 0.228819, 0.491881, 0.634818], atol=1e-6)
    np.testing.assert_allclose(deriv[:5], [0.043299, 0.193671, 0.462297, 0.496889, 0.0], atol=1e-6)
    np.testing.assert_allclose(np.outer(smooth, deriv), ref_kernel(), atol=1e-15)


def test_matlab_colon_levels():
    assert list(matlab_colon(0, 0.1, 1)) == MATLAB_LEVELS
    assert matlab_colon(0, 0.1, 1)[6] == 0.6 != np.arange(0, 1.1, 0.1)[6]


def test_153_passes_the_0_6_level_in_matlab_but_not_in_mmagic():
    # l = 0.6 in MATLAB: the second pixel has d = 0.4 -> phi 0.6 -> |0.6 - 1| = 0.4.
    # mmagic's 0.6000000000000001 drops both pixels at 0.6, l = 0.5, d = 0.5 -> 0.5.
    gt = np.array([[153, 153]], np.uint8)
    pred = np.array([[153, 255]], np.uint8)
    trimap = np.full((1, 2), 128, np.uint8)
    assert compute_metrics(pred, gt, trimap, ["conn"])["conn"] == pytest.approx(0.4 / 1000, rel=1e-6)
    assert compute_metrics(pred, gt, trimap, ["conn"], "mmagic")["conn"] == pytest.approx(0.5 / 1000, rel=1e-12)
    assert ref_conn(pred, gt, trimap) == pytest.approx(0.4 / 1000, rel=1e-6)


def test_equal_components_resolve_in_column_major_order():
    # Two 2-pixel components: A at the top right comes first row-major, B at the bottom left
    # first column-major. MATLAB keeps B, so A's pixels get l = 0 and (0, 3) scores
    # |0 - (1 - 230/255)|; mmagic keeps A (until 1.0, where B wins) and that pixel scores 0.
    # The four zero pixels score 1 each in both.
    pred = np.array([[0, 0, 255, 255], [255, 255, 0, 0]], np.uint8)
    gt = np.array([[255, 255, 255, 230], [255, 255, 255, 255]], np.uint8)
    trimap = np.full(pred.shape, 128, np.uint8)
    want = (4 + 1 - 230 / 255) / 1000
    assert compute_metrics(pred, gt, trimap, ["conn"])["conn"] == pytest.approx(want, rel=1e-6)
    assert ref_conn(pred, gt, trimap) == pytest.approx(want, rel=1e-6)
    assert compute_metrics(pred, gt, trimap, ["conn"], "mmagic")["conn"] == pytest.approx(4 / 1000, rel=1e-12)


def test_empty_intersection_puts_every_pixel_at_level_zero():
    # pred 0 everywhere: no component at any level, l = 0, phi_p = 1, phi_g = 1 - g where g >= 0.15.
    gt = np.array([[0, 30, 38, 39, 128, 255]], np.uint8)
    pred = np.zeros_like(gt)
    trimap = np.full(gt.shape, 128, np.uint8)
    g = gt / 255.0
    want = float(np.sum(np.where(g >= 0.15, g, 0))) / 1000
    got = compute_metrics(pred, gt, trimap)
    assert got["conn"] == pytest.approx(want, rel=1e-6)
    assert got["sad"] == pytest.approx(gt.sum() / 255 / 1000, rel=1e-6)
    assert_close(got, reference(pred, gt, trimap))


def test_constant_mattes_have_no_gradient():
    trimap = np.full((12, 12), 128, np.uint8)
    for value in (0, 77, 255):
        const = np.full((12, 12), value, np.uint8)
        assert compute_metrics(const, const, trimap)["grad"] == 0.0
    gt = np.zeros((12, 12), np.uint8)
    gt[:, 6:] = 255
    # pred constant: the error is the GT's own gradient energy, which the reference computes
    got = compute_metrics(np.full((12, 12), 90, np.uint8), gt, trimap)["grad"]
    assert got > 0
    assert got == pytest.approx(ref_grad(np.full((12, 12), 90, np.uint8), gt, trimap), rel=1e-6)


def test_mat2gray_normalises_over_the_whole_image():
    # Same shape, different range: a matte spanning 0..100 has the gradient of one spanning 0..255.
    pred, gt, trimap = random_case(7)
    scaled = (pred.astype(np.float64) * 100 / 255).round().astype(np.uint8)
    assert compute_metrics(scaled, gt, trimap, ["grad"])["grad"] == pytest.approx(ref_grad(scaled, gt, trimap), rel=1e-6)
    assert compute_metrics(scaled, gt, trimap, ["grad"])["grad"] != pytest.approx(
        compute_metrics(pred, gt, trimap, ["grad"])["grad"], rel=1e-3)


def test_only_the_unknown_region_counts():
    pred, gt, trimap = random_case(3)
    known = trimap != 128
    other = pred.copy()
    other[known] = 255 - other[known]
    a = compute_metrics(pred, gt, trimap, ["sad", "mse"])
    assert compute_metrics(other, gt, trimap, ["sad", "mse"]) == a
    assert trimap[0, 0] != 127
    assert compute_metrics(pred, gt, np.where(trimap == 128, 127, trimap).astype(np.uint8))["sad"] == 0.0


def test_no_unknown_pixel_gives_zero_everywhere():
    pred, gt, _ = random_case(1)
    trimap = np.zeros(pred.shape, np.uint8)
    assert compute_metrics(pred, gt, trimap) == {"sad": 0.0, "mse": 0.0, "grad": 0.0, "conn": 0.0}
    assert compute_metrics(pred, gt, trimap, convention="mmagic")["mse"] == 0.0


def test_16_bit_and_float_inputs_equal_the_8_bit_ones():
    pred, gt, trimap = random_case(4)
    want = compute_metrics(pred, gt, trimap)
    assert compute_metrics(pred.astype(np.uint16) * 257, gt.astype(np.uint16) * 257, trimap) == want
    assert compute_metrics(pred.astype(np.float32) / np.float32(255), gt, trimap) == want


def test_subset_and_bad_arguments():
    pred, gt, trimap = random_case(0)
    assert set(compute_metrics(pred, gt, trimap, ["conn", "sad"])) == {"sad", "conn"}
    with pytest.raises(ValueError, match="unknown metric"):
        compute_metrics(pred, gt, trimap, ["sad", "psnr"])
    with pytest.raises(ValueError, match="convention"):
        compute_metrics(pred, gt, trimap, convention="gca")
    with pytest.raises(ValueError, match="shapes differ"):
        compute_metrics(pred[:-1], gt, trimap)
    with pytest.raises(ValueError, match="NaN"):
        compute_metrics(np.full(gt.shape, np.nan, np.float32), gt, trimap)


def test_matches_the_reference_on_a_realistic_matte():
    """A 40x48 crop of a procedural sample matte (strands, blur) with a network-like error."""
    import cv2

    from mattecli.data.samples import generate_foreground
    from mattecli.data.trimap import trimap_from_alpha

    _, alpha = generate_foreground(3, "metric_test", 96, 80)
    gt = np.ascontiguousarray(alpha[20:60, 24:72])
    pred = cv2.GaussianBlur(gt, (0, 0), 1.2)
    pred = np.clip(pred.astype(int) + np.random.default_rng(0).integers(-25, 26, gt.shape), 0, 255).astype(np.uint8)
    trimap = trimap_from_alpha(gt, 3, 2, 3, 2)
    assert (trimap == 128).any()
    assert_close(compute_metrics(pred, gt, trimap), reference(pred, gt, trimap))


def test_unknown_pixels_far_from_the_matte():
    # The matte occupies a corner; the unknown region covers the whole image, so most unknown
    # pixels lie outside every level's mask (and outside the box the components live in).
    pred, gt, _ = random_case(9, 10, 12)
    big_pred, big_gt = np.zeros((20, 26), np.uint8), np.zeros((20, 26), np.uint8)
    big_pred[8:18, 12:24], big_gt[8:18, 12:24] = pred, gt
    trimap = np.full(big_gt.shape, 128, np.uint8)
    trimap[0, 0] = 0
    assert_close(compute_metrics(big_pred, big_gt, trimap), reference(big_pred, big_gt, trimap))
    assert_close(compute_metrics(big_pred.T.copy(), big_gt.T.copy(), trimap.T.copy()),
                 reference(big_pred.T, big_gt.T, trimap.T))
