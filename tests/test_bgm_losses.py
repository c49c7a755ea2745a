"""Background Matting's losses on hand-made tensors, against values worked out independently."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import correlate

from mattecli.families.bgm.family import adversarial_composite
from mattecli.families.bgm.losses import (adobe_loss, discriminator_loss, gradient_l1, normalized_l1,
                                          pseudo_supervision, pseudo_weight)

KX = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], np.float64)
KY = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], np.float64)


def test_normalized_l1_per_sample_mask_and_empty_sample():
    a = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]], [[[5.0, 5.0], [5.0, 5.0]]]])
    b = torch.zeros_like(a)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]], [[[0.0, 0.0], [0.0, 0.0]]]])
    # sample 1: (1 + 4) / 2 = 2.5; sample 2 has an empty mask and adds 0; mean over the batch of 2
    assert normalized_l1(a, b, mask).item() == pytest.approx(1.25, rel=1e-5)
    assert normalized_l1(a, b).item() == pytest.approx((2.5 + 5.0) / 2, rel=1e-5)


def test_gradient_loss_of_a_delta():
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 1, 1] = 1.0
    # the Sobel responses of a unit impulse are the (flipped) kernels: |.| sums to 8 each, over 9 pixels
    assert gradient_l1(x, torch.zeros_like(x)).item() == pytest.approx(16 / 9, rel=1e-5)


def _sobel_l1(a: np.ndarray, b: np.ndarray) -> float:
    total = 0.0
    for k in (KX, KY):
        total += np.abs(correlate(a, k, mode="constant") - correlate(b, k, mode="constant")).mean()
    return total


def test_adobe_loss_by_hand():
    alpha = torch.ones(1, 1, 4, 4)              # GT alpha 1 (signed)
    alpha_pred = torch.zeros(1, 1, 4, 4)        # 0.5 on the [0, 1] scale
    alpha_pred[0, 0, 0, 0] = 0.99               # opaque: F_c takes the image here
    fg = torch.full((1, 3, 4, 4), 0.5)
    fg_pred = torch.zeros(1, 3, 4, 4)
    image = torch.full((1, 3, 4, 4), 0.2)
    bg = torch.full((1, 3, 4, 4), -1.0)
    parts = adobe_loss(alpha_pred, fg_pred, alpha, fg, image, bg)
    a_np = alpha_pred.numpy()[0, 0].astype(np.float64)
    l_alpha = np.abs(1 - a_np).mean()
    l_fg = 0.5
    a01 = (a_np + 1) / 2
    fc = np.where(a_np > 0.95, 0.2, 0.0)
    comp = fc * a01 + (1 - a01) * -1.0
    l_comp = np.abs(0.2 - comp).mean()
    l_grad = _sobel_l1(np.ones((4, 4)), a_np)
    assert parts["alpha"].item() == pytest.approx(l_alpha, rel=1e-5)
    assert parts["fg"].item() == pytest.approx(l_fg, rel=1e-5)
    assert parts["comp"].item() == pytest.approx(l_comp, rel=1e-5)
    assert parts["grad"].item() == pytest.approx(l_grad, rel=1e-5)
    assert parts["loss"].item() == pytest.approx(l_alpha + 2 * l_fg + l_comp + l_grad, rel=1e-5)


def test_adobe_foreground_mask_ignores_true_background():
    alpha = -torch.ones(1, 1, 2, 2)
    alpha[0, 0, 0, 0] = 1.0                      # one foreground pixel
    fg = torch.zeros(1, 3, 2, 2)
    fg_pred = torch.ones(1, 3, 2, 2)
    fg_pred[:, :, 0, 0] = 0.25
    parts = adobe_loss(alpha, fg_pred, alpha, fg, torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2))
    assert parts["fg"].item() == pytest.approx(0.25, rel=1e-5)


def test_real_losses_and_schedule():
    alpha = torch.zeros(1, 1, 3, 3)
    alpha_t = torch.full((1, 1, 3, 3), 0.5)
    alpha_t[0, 0, 0, :] = -1.0                   # teacher says background on the top row
    fg = torch.zeros(1, 3, 3, 3)
    fg_t = torch.full((1, 3, 3, 3), 0.3)
    image = torch.full((1, 3, 3, 3), 0.4)
    plate = torch.full((1, 3, 3, 3), -0.2)
    raw = -torch.ones(1, 1, 3, 3)
    raw[0, 0, 2, 2] = 1.0                        # one pixel of sure segmentation
    parts = pseudo_supervision(alpha, fg, alpha_t, fg_t, image, plate, raw)
    at = alpha_t.numpy()[0, 0].astype(np.float64)
    expected_alpha = np.abs(at).mean() + 0.5 * _sobel_l1(at, np.zeros((3, 3)))
    assert parts["alpha"].item() == pytest.approx(expected_alpha, rel=1e-5)
    assert parts["fg"].item() == pytest.approx(0.3, rel=1e-5)  # only rows where alpha_t > -0.98
    # composite at the one sure pixel: alpha 0 -> 0.5: 0.5 * 0 + 0.5 * -0.2 = -0.1; |0.4 - -0.1| = 0.5
    assert parts["comp"].item() == pytest.approx(0.5, rel=1e-5)
    assert [pseudo_weight(e) for e in (0, 1, 2, 3, 4, 5)] == pytest.approx([0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125])
    assert discriminator_loss(torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2)).item() == pytest.approx(0.5)
    assert discriminator_loss(torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)).item() == pytest.approx(0.0)


def test_adversarial_composite_shift_stays_inside_the_frame():
    alpha = -torch.ones(1, 1, 2, 8)
    alpha[..., 2:4] = 1.0
    fg = torch.zeros(1, 3, 2, 8)
    image = torch.full((1, 3, 2, 8), 0.7)
    target = torch.full((1, 3, 2, 8), -0.5)
    plate = torch.full((1, 3, 2, 8), 0.1)
    for u, cols in ((0.0, [0, 1]), (1.0, [6, 7])):
        fake = adversarial_composite(alpha, fg, image, plate, target, torch.tensor([1.0]), torch.tensor([u]))
        # opaque pixels take the image (F_c), the rest the target background
        assert torch.nonzero(fake[0, 0, 0] == 0.7).flatten().tolist() == cols
        assert (fake[0, 0, 0][[c for c in range(8) if c not in cols]] == -0.5).all()
    fake = adversarial_composite(alpha, fg, image, plate, target, torch.tensor([0.0]), torch.tensor([0.0]))
    assert (fake[0, 0, 0, 2:] == 0.1).all()  # batch of one: "another sample's plate" is its own
