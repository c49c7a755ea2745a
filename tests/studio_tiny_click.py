"""A tiny click-guided network for the studio's tests (not collected by pytest).

It has the interface of the click family (``mattecli/families/click``): a ``refine_patches``
budget attribute, ``extra_outputs = ("uncertainty",)``, and ``predict(image, guidance,
refine_patches=None)`` returning alpha, a positive per-pixel ``uncertainty`` (sigma) and the
``patches`` it refined (per image, boxes ``(y0, x0, y1, x1)``), so the studio's heat map, patch
outlines and budget slider are exercised in milliseconds, without a ResNet.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mattecli.families.registry import register_family
from mattecli.io.checkpoint import save_checkpoint

PATCH = 8


class TinyClick(nn.Module):
    family = "studio_tinyclick"
    guidance = "clicks"
    extra_outputs = ("uncertainty",)

    def __init__(self, gain: float = 1.0, refine_patches: int = 2) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(float(gain)))
        self.refine_patches = refine_patches

    @torch.no_grad()
    def predict(self, image: torch.Tensor, guidance: torch.Tensor, refine_patches: int | None = None) -> dict:
        budget = self.refine_patches if refine_patches is None else refine_patches
        spread = F.avg_pool2d(guidance[:, 0:1] - guidance[:, 1:2], 9, 1, 4, count_include_pad=False)
        alpha = torch.sigmoid(self.gain * (8 * spread + 4 * (image.mean(1, keepdim=True) - 0.4)))
        sigma = alpha * (1 - alpha) + 1e-3
        patches = []
        for b in range(image.shape[0]):
            # the refine_patches most uncertain PATCH x PATCH cells of a grid: non-overlapping by construction
            cells = F.avg_pool2d(sigma[b:b + 1], PATCH, PATCH, ceil_mode=True)[0, 0]
            top = torch.argsort(cells.flatten(), descending=True)[:budget]
            patches.append([(int(i // cells.shape[1]) * PATCH, int(i % cells.shape[1]) * PATCH,
                             int(i // cells.shape[1]) * PATCH + PATCH, int(i % cells.shape[1]) * PATCH + PATCH)
                            for i in top])
        return {"alpha": alpha, "uncertainty": sigma, "patches": patches}


@register_family("studio_tinyclick")
def build(gain: float = 1.0, refine_patches: int = 2) -> TinyClick:
    return TinyClick(gain, refine_patches)


def save_tiny_click(path, gain: float = 1.5) -> None:
    save_checkpoint(path, {"family": "studio_tinyclick", "model_config": {"gain": 1.0},
                           "model": TinyClick(gain).state_dict()})
