"""The click family's losses (Wei et al., CVPR 2021, section on training; see docs/click.md).

- :func:`regression_loss` L_reg = (1/|T|) sum_T |a_p - a_g| + (1/|S|) sum_S (a_p - a_g)^2. The
  note on the paper does not say which set is which; **ours**: T = the transition band
  (pixels with 0 < a_g < 1, dilated by ``band`` pixels), where L1 keeps hard boundary pixels
  from dominating, and S = its complement (solid foreground and background), where L2 punishes
  large mistakes hardest and leaves tiny ones alone.
- :func:`gradient_loss` L_grad = mean over pixels of |d/dx a_p - d/dx a_g| + |d/dy a_p - d/dy a_g|
  (forward differences; ours, the paper writes |grad a_p - grad a_g| without the operator).
- :func:`laplace_nll` L_ue = mean of log sigma + |a_g - a_p| / sigma: the negative log-likelihood
  of a Laplace with location a_p and scale sigma (constant log 2 dropped); minimised at
  sigma = |a_g - a_p|.
- :func:`refinement_loss` L_refine = mean L1 over the patch + lambda * mean L1 over its 20%
  hardest pixels (hard-sample mining; lambda is not published, ours 1.0).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

_EMPTY = 1e-12


def _f32(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.promote_types(x.dtype, torch.float32))


def transition_band(gt_alpha: torch.Tensor, band: int = 5) -> torch.Tensor:
    """1.0 on pixels with 0 < alpha < 1, dilated by ``band`` pixels (square), else 0.0."""
    soft = ((gt_alpha > 0) & (gt_alpha < 1)).to(torch.float32)
    if band > 0:
        soft = F.max_pool2d(soft, kernel_size=2 * band + 1, stride=1, padding=band)
    return soft


def regression_loss(pred: torch.Tensor, gt: torch.Tensor, transition: torch.Tensor) -> torch.Tensor:
    """L1 averaged over the transition pixels plus L2 averaged over the others (each over the batch)."""
    diff = _f32(pred) - gt
    t = transition.to(diff.dtype)
    s = 1.0 - t
    return (diff.abs() * t).sum() / (t.sum() + _EMPTY) + (diff * diff * s).sum() / (s.sum() + _EMPTY)


def gradient_loss(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Mean |horizontal difference error| + mean |vertical difference error|."""
    p, g = _f32(pred), _f32(gt)
    dx = (p[..., :, 1:] - p[..., :, :-1]) - (g[..., :, 1:] - g[..., :, :-1])
    dy = (p[..., 1:, :] - p[..., :-1, :]) - (g[..., 1:, :] - g[..., :-1, :])
    return dx.abs().mean() + dy.abs().mean()


def matting_loss(pred: torch.Tensor, gt: torch.Tensor, band: int = 5, grad_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """Stage ``matting``: L_reg + grad_weight * L_grad; returns all three."""
    reg = regression_loss(pred, gt, transition_band(gt, band))
    grad = gradient_loss(pred, gt)
    return {"loss": reg + grad_weight * grad, "reg": reg, "grad": grad}


def laplace_nll(sigma: torch.Tensor, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Mean of ``log sigma + |gt - pred| / sigma`` (``pred`` should be detached by the caller)."""
    s = _f32(sigma)
    return (torch.log(s) + (_f32(gt) - pred).abs() / s).mean()


def refinement_loss(pred: torch.Tensor, gt: torch.Tensor, hard_fraction: float = 0.2,
                    hard_weight: float = 1.0) -> torch.Tensor:
    """Per patch (dim 0): mean L1 + ``hard_weight`` * mean L1 of its ``hard_fraction`` largest errors;
    averaged over the patches."""
    err = (_f32(pred) - gt).abs().flatten(1)
    k = max(1, int(round(hard_fraction * err.shape[1])))
    hard = err.topk(k, dim=1).values
    return (err.mean(dim=1) + hard_weight * hard.mean(dim=1)).mean()
