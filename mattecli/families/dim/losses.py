"""Deep Image Matting's stage-1 loss: the weighted sum of the shared alpha and compositional losses."""
from __future__ import annotations

import torch

from mattecli.losses.matting import EPS, alpha_prediction_loss, compositional_loss


def dim_loss(pred_alpha: torch.Tensor, gt_alpha: torch.Tensor, fg: torch.Tensor, bg: torch.Tensor,
             merged: torch.Tensor, weight: torch.Tensor, alpha_weight: float = 0.5,
             eps: float = EPS) -> dict[str, torch.Tensor]:
    """The paper's stage-1 loss ``w*L_alpha + (1-w)*L_comp`` with ``w = 0.5``; returns all three."""
    l_alpha = alpha_prediction_loss(pred_alpha, gt_alpha, weight, eps)
    l_comp = compositional_loss(pred_alpha, fg, bg, merged, weight, eps)
    return {"loss": alpha_weight * l_alpha + (1.0 - alpha_weight) * l_comp, "alpha": l_alpha, "comp": l_comp}
