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
    l_fg = 3 * 0.5                               # three colour channels per (one-channel) mask pixel
    a01 = (a_np + 1) / 2
    fc = np.where(a_np > 0.95, 0.2, 0.0)
    comp = fc * a01 + (1 - a01) * -1.0
    l_comp = 3 * np.abs(0.2 - comp).mean()
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
    assert parts["fg"].item() == pytest.approx(3 * 0.25, rel=1e-5)


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
    assert parts["fg"].item() == pytest.approx(3 * 0.3, rel=1e-5)  # only rows where alpha_t > -0.98
    # composite at the one sure pixel: alpha 0 -> 0.5: 0.5 * 0 + 0.5 * -0.2 = -0.1; |0.4 - -0.1| = 0.5, x 3 channels
    assert parts["comp"].item() == pytest.approx(3 * 0.5, rel=1e-5)
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


# --- the official formulas, written out here (loss_functions.py, train_adobe.py, train_real_fixed.py) ---

def official_normalized_l1(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """``normalized_l1_loss``: per sample with a non-empty mask, sum|a*m - b*m| / (sum m + 1e-6),
    summed and divided by the batch size; ``mask`` broadcasts as the official tensors do."""
    total = 0.0
    for i in range(a.shape[0]):
        if mask[i].sum() > 0:
            total += np.abs(a[i] * mask[i] - b[i] * mask[i]).sum() / (mask[i].sum() + 1e-6)
    return total / a.shape[0]


def official_gradient(alpha: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> float:
    gx = lambda x: np.stack([[correlate(x[i, 0], KX, mode="constant")] for i in range(len(x))])  # noqa: E731
    gy = lambda x: np.stack([[correlate(x[i, 0], KY, mode="constant")] for i in range(len(x))])  # noqa: E731
    return official_normalized_l1(gx(alpha), gx(pred), mask) + official_normalized_l1(gy(alpha), gy(pred), mask)


def _random_batch(seed: int = 3, n: int = 3, size: int = 9):
    g = np.random.default_rng(seed)
    signed = lambda *shape: g.uniform(-1, 1, shape)  # noqa: E731
    alpha = np.clip(signed(n, 1, size, size) * 1.5, -1, 1)  # some exact -1 (no F mask) and 1 pixels
    return alpha, signed(n, 1, size, size), signed(n, 3, size, size), signed(n, 3, size, size), \
        signed(n, 3, size, size), signed(n, 3, size, size)


def test_adobe_total_matches_the_official_formula_on_random_tensors():
    alpha, alpha_pred, fg, fg_pred, image, bg = _random_batch()
    mask = (alpha > -0.99).astype(np.float64)          # mask = (alpha > -0.99): ONE channel
    mask0 = np.ones(alpha.shape)                       # mask0 = ones(alpha.shape): ONE channel
    al = official_normalized_l1(alpha, alpha_pred, mask0)
    fgl = official_normalized_l1(fg, fg_pred, mask)
    al_mask = (alpha_pred > 0.95).astype(np.float64)
    fg_c = image * al_mask + fg_pred * (1 - al_mask)
    a01 = (alpha_pred + 1) / 2
    comp = official_normalized_l1(image, fg_c * a01 + (1 - a01) * bg, mask0)
    grad = official_gradient(alpha, alpha_pred, mask0)
    official = al + 2 * fgl + comp + grad
    t = lambda x: torch.from_numpy(x).float()  # noqa: E731
    parts = adobe_loss(t(alpha_pred), t(fg_pred), t(alpha), t(fg), t(image), t(bg))
    assert parts["fg"].item() == pytest.approx(fgl, rel=1e-5)
    assert parts["comp"].item() == pytest.approx(comp, rel=1e-5)
    assert parts["loss"].item() == pytest.approx(official, rel=1e-5)
    # the colour terms count three channels per mask pixel: three times a per-value mean
    assert comp == pytest.approx(3 * np.abs(image - (fg_c * a01 + (1 - a01) * bg)).mean(), rel=1e-5)


def test_pseudo_supervision_matches_the_official_formula_on_random_tensors():
    alpha_t, alpha, fg_t, fg, image, plate = _random_batch(seed=5)
    raw = np.random.default_rng(6).uniform(-1, 1, alpha.shape)
    mask0 = np.ones(alpha.shape)                        # mask0 = ones(seg.shape): ONE channel
    mask = (alpha_t > -0.98).astype(np.float64)         # mask = (alpha_pred_sup > -0.98)
    mask1 = (raw > 0.95).astype(np.float64)             # mask1 = (seg_gt > 0.95)
    al = official_normalized_l1(alpha_t, alpha, mask0) + 0.5 * official_gradient(alpha_t, alpha, mask0)
    fgl = official_normalized_l1(fg_t, fg, mask)
    a01 = (alpha + 1) / 2
    comp = official_normalized_l1(image, fg * a01 + (1 - a01) * plate, mask1)
    t = lambda x: torch.from_numpy(x).float()  # noqa: E731
    parts = pseudo_supervision(t(alpha), t(fg), t(alpha_t), t(fg_t), t(image), t(plate), t(raw))
    assert parts["alpha"].item() == pytest.approx(al, rel=1e-5)
    assert parts["fg"].item() == pytest.approx(fgl, rel=1e-5)
    assert parts["comp"].item() == pytest.approx(comp, rel=1e-5)


def test_pseudo_weight_follows_the_official_halving_after_even_epochs():
    """``wt = 1``; after each epoch with ``epoch % 2 == 0``, ``wt = wt / 2``; the loss uses wt * 0.05."""
    wt, expected = 1.0, []
    for epoch in range(8):
        expected.append(0.05 * wt)
        if epoch % 2 == 0:
            wt /= 2
    assert [pseudo_weight(e) for e in range(8)] == pytest.approx(expected)
    assert expected[:4] == pytest.approx([0.05, 0.025, 0.025, 0.0125])
