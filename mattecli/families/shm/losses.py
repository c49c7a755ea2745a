"""SHM's losses (models.md 2.2): L = L_p + lambda * L_t, L_p = gamma * L_alpha + (1 - gamma) * L_comp.

- ``L_t``: pixel-wise cross-entropy of the 3-class trimap (classes in
  :mod:`mattecli.families.shm.classes` order), mean over **every pixel** of the T-Net's input.
- ``L_alpha``: Charbonnier ``sqrt(d^2 + eps^2)``, eps = 1e-6, between the fused alpha_p and
  the true alpha; ``L_comp``: the same between ``alpha_p * F + (1 - alpha_p) * B`` (the true
  foreground and background) and the true composite. A real re-composite, not the
  ``alpha * image`` products of lizhengwei1992's port. Shared code:
  :mod:`mattecli.losses.matting`.
- gamma = 0.5, lambda = 0.01 (lizhengwei1992 ``train.py``; tsing90's end-to-end loss).

Which pixels L_p covers (``weight``): in the end-to-end stage **every pixel** (no trimap
is given; alpha_p is the prediction everywhere; lizhengwei1992 averages over all pixels, the
paper does not restrict it as far as we know); in M-Net pre-training, where the
ground-truth trimap is the input as one-hot probabilities and alpha_p equals alpha_r exactly
in its unknown band and 0/1 elsewhere, only the **unknown band** (DIM's convention).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from mattecli.losses.matting import EPS, alpha_prediction_loss, compositional_loss

GAMMA = 0.5
LAMBDA = 0.01


def trimap_loss(logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """L_t: mean cross-entropy over all pixels; ``classes`` Bx1xHxW or BxHxW int64 indices."""
    if classes.dim() == 4:
        classes = classes[:, 0]
    return F.cross_entropy(logits.float(), classes.long())


def prediction_loss(alpha: torch.Tensor, gt_alpha: torch.Tensor, fg: torch.Tensor, bg: torch.Tensor,
                    merged: torch.Tensor, weight: torch.Tensor, gamma: float = GAMMA,
                    eps: float = EPS) -> dict[str, torch.Tensor]:
    """L_p over the pixels where ``weight`` is 1, with its two parts."""
    l_alpha = alpha_prediction_loss(alpha, gt_alpha, weight, eps)
    l_comp = compositional_loss(alpha, fg, bg, merged, weight, eps)
    return {"loss": gamma * l_alpha + (1.0 - gamma) * l_comp, "alpha": l_alpha, "comp": l_comp}


def shm_loss(alpha: torch.Tensor, logits: torch.Tensor, classes: torch.Tensor, gt_alpha: torch.Tensor,
             fg: torch.Tensor, bg: torch.Tensor, merged: torch.Tensor, gamma: float = GAMMA,
             lam: float = LAMBDA, eps: float = EPS) -> dict[str, torch.Tensor]:
    """The end-to-end loss L = L_p + lambda * L_t, L_p over the whole image."""
    parts = prediction_loss(alpha, gt_alpha, fg, bg, merged, torch.ones_like(gt_alpha), gamma, eps)
    l_t = trimap_loss(logits, classes)
    return {"loss": parts["loss"] + lam * l_t, "alpha": parts["alpha"], "comp": parts["comp"],
            "pred": parts["loss"], "trimap": l_t}
