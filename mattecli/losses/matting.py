"""Alpha-prediction and compositional Charbonnier losses (DIM, SHM and others use them).

Per pixel, ``sqrt(d^2 + eps^2)`` with ``eps = 1e-6`` (``1e-12`` inside the root, as in
foamliu's ``config.py``, Joker's TF code and mmagic's ``CharbonnierLoss``). Only pixels of
the trimap's unknown region count, and each loss is their sum divided by their number (for
the compositional loss: by the number of unknown pixel-channels, i.e. the mean over the
three colour channels, as mmagic's ``CharbonnierCompLoss`` weights it), summed over the
whole batch before dividing. Colours are in [0, 1].
"""
from __future__ import annotations

import torch

from mattecli.data.composite import composite
from mattecli.data.trimap import UNKNOWN

EPS = 1e-6
#: Guards the division when a batch has no unknown pixel (the loss is then 0).
_EMPTY = 1e-12


def unknown_weight(trimap: torch.Tensor) -> torch.Tensor:
    """1.0 where the trimap is unknown, else 0.0; uint8 {0,128,255} or float {0,0.5,1} trimaps."""
    unknown = trimap == (UNKNOWN if not trimap.is_floating_point() else 0.5)
    return unknown.to(torch.float32)


def charbonnier(diff: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    return torch.sqrt(diff * diff + eps * eps)


def _at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """Losses in fp32 (or fp64) even under autocast: 1e-12 vanishes next to d^2 in bf16."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _masked_mean(per_pixel: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    weight = weight.to(per_pixel.dtype).expand_as(per_pixel)
    return (per_pixel * weight).sum() / (weight.sum() + _EMPTY)


def alpha_prediction_loss(pred_alpha: torch.Tensor, gt_alpha: torch.Tensor, weight: torch.Tensor,
                          eps: float = EPS) -> torch.Tensor:
    """Mean Charbonnier distance between predicted and true alpha over weighted (unknown) pixels."""
    return _masked_mean(charbonnier(_at_least_fp32(pred_alpha) - gt_alpha, eps), weight)


def compositional_loss(pred_alpha: torch.Tensor, fg: torch.Tensor, bg: torch.Tensor, merged: torch.Tensor,
                       weight: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Charbonnier distance between ``pred_alpha*F + (1-pred_alpha)*B`` and the true composite."""
    return _masked_mean(charbonnier(composite(fg, _at_least_fp32(pred_alpha), bg) - merged, eps), weight)
