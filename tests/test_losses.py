"""DIM losses against values computed here by hand, pixel by pixel, with Python floats."""
from __future__ import annotations

import math

import pytest
import torch

from mattecli.families.dim.losses import dim_loss
from mattecli.losses.matting import alpha_prediction_loss, charbonnier, compositional_loss, unknown_weight

EPS = 1e-6


def _trimap(rows: list[list[int]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.uint8)[None, None]


def _plane(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)[None, None]


TRIMAP = _trimap([[0, 128, 255], [128, 128, 0]])
PRED = _plane([[0.9, 0.25, 0.1], [0.5, 0.7, 0.3]])
GT = _plane([[0.0, 0.5, 1.0], [0.5, 0.2, 0.0]])


def _expected_alpha(pred, gt, trimap) -> float:
    total, count = 0.0, 0
    for p, g, t in zip(pred.flatten().tolist(), gt.flatten().tolist(), trimap.flatten().tolist()):
        if t == 128:
            total += math.sqrt((p - g) ** 2 + EPS ** 2)
            count += 1
    return total / count


def test_alpha_loss_matches_hand_computation():
    # unknown pixels: |0.25-0.5|, |0.5-0.5| (contributes exactly eps), |0.7-0.2|
    expected = (math.sqrt(0.25 ** 2 + 1e-12) + 1e-6 + math.sqrt(0.5 ** 2 + 1e-12)) / 3
    assert expected == pytest.approx(_expected_alpha(PRED, GT, TRIMAP), rel=1e-15)
    got = alpha_prediction_loss(PRED, GT, unknown_weight(TRIMAP))
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_eps_is_inside_the_square_root():
    # a perfect prediction still costs eps per pixel: sqrt(0 + 1e-12) = 1e-6
    loss = alpha_prediction_loss(GT.float(), GT.float(), unknown_weight(TRIMAP))
    assert loss.item() == pytest.approx(1e-6, rel=1e-5)
    assert charbonnier(torch.tensor([0.0], dtype=torch.float64)).item() == pytest.approx(1e-6, rel=1e-12)


def test_known_pixels_do_not_change_the_loss():
    weight = unknown_weight(TRIMAP)
    before = alpha_prediction_loss(PRED, GT, weight)
    changed = PRED.clone()
    known = TRIMAP != 128
    changed[known] = torch.tensor([0.123, 0.987, 0.5], dtype=torch.float64)
    after = alpha_prediction_loss(changed, GT, weight)
    assert after.item() == before.item()
    # ...while changing an unknown pixel does
    changed[0, 0, 1, 1] = 0.0
    assert alpha_prediction_loss(changed, GT, weight).item() != before.item()


def test_normalised_by_unknown_count_over_the_batch():
    # sample 1 has 3 unknown pixels, sample 2 has 1: the loss is the sum over 4 pixels / 4,
    # not the mean of the two per-sample means
    trimap = torch.cat([TRIMAP, _trimap([[0, 0, 128], [255, 255, 0]])])
    pred = torch.cat([PRED, _plane([[0.0, 0.0, 0.0], [1.0, 1.0, 0.0]])])
    gt = torch.cat([GT, _plane([[0.0, 0.0, 0.6], [1.0, 1.0, 0.0]])])
    per_pixel = [math.sqrt(0.25 ** 2 + 1e-12), 1e-6, math.sqrt(0.5 ** 2 + 1e-12), math.sqrt(0.6 ** 2 + 1e-12)]
    got = alpha_prediction_loss(pred, gt, unknown_weight(trimap)).item()
    assert got == pytest.approx(sum(per_pixel) / 4, rel=1e-12)
    assert got != pytest.approx((sum(per_pixel[:3]) / 3 + per_pixel[3]) / 2, rel=1e-6)


def test_no_unknown_pixels_gives_zero():
    trimap = _trimap([[0, 255, 255], [0, 0, 255]])
    assert alpha_prediction_loss(PRED, GT, unknown_weight(trimap)).item() == 0.0


def test_float_trimap_marks_the_same_pixels():
    as_float = TRIMAP.double() / 255
    as_float[TRIMAP == 128] = 0.5
    assert torch.equal(unknown_weight(as_float), unknown_weight(TRIMAP))


def _colours() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    fg = torch.rand(1, 3, 2, 3, generator=g, dtype=torch.float64)
    bg = torch.rand(1, 3, 2, 3, generator=g, dtype=torch.float64)
    merged = GT * fg + (1 - GT) * bg
    return fg, bg, merged


def test_compositional_loss_matches_hand_computation():
    fg, bg, merged = _colours()
    total, count = 0.0, 0
    for y in range(2):
        for x in range(3):
            if TRIMAP[0, 0, y, x] != 128:
                continue
            a = PRED[0, 0, y, x].item()
            for c in range(3):
                predicted = a * fg[0, c, y, x].item() + (1 - a) * bg[0, c, y, x].item()
                total += math.sqrt((predicted - merged[0, c, y, x].item()) ** 2 + 1e-12)
                count += 1
    got = compositional_loss(PRED, fg, bg, merged, unknown_weight(TRIMAP)).item()
    assert count == 9
    assert got == pytest.approx(total / count, rel=1e-12)


def test_dim_loss_weights_the_two_halves():
    fg, bg, merged = _colours()
    weight = unknown_weight(TRIMAP)
    parts = dim_loss(PRED, GT, fg, bg, merged, weight)
    a = alpha_prediction_loss(PRED, GT, weight).item()
    c = compositional_loss(PRED, fg, bg, merged, weight).item()
    assert parts["alpha"].item() == a and parts["comp"].item() == c
    assert parts["loss"].item() == pytest.approx(0.5 * a + 0.5 * c, rel=1e-12)
    other = dim_loss(PRED, GT, fg, bg, merged, weight, alpha_weight=0.8)["loss"].item()
    assert other == pytest.approx(0.8 * a + 0.2 * c, rel=1e-12)


def test_gradient_flows_only_through_unknown_pixels():
    pred = PRED.clone().requires_grad_(True)
    alpha_prediction_loss(pred, GT, unknown_weight(TRIMAP)).backward()
    assert torch.all(pred.grad[TRIMAP != 128] == 0)
    assert torch.all(pred.grad[(TRIMAP == 128) & (PRED != GT)] != 0)


def test_low_precision_predictions_are_scored_in_fp32():
    gt = _plane([[0.0, 0.5, 1.0], [0.5, 0.25, 0.0]]).float()  # exact in bf16
    loss = alpha_prediction_loss(gt.to(torch.bfloat16), gt, unknown_weight(TRIMAP))
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(1e-6, rel=1e-3)  # bf16 arithmetic would lose the eps
