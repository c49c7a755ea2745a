"""Padding to a multiple of the network stride, and traceable unpooling, in one place for every family."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def pad_to_multiple(x: torch.Tensor, multiple: int = 32, mode: str = "reflect") -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the bottom and right of a BxCxHxW tensor to multiples of ``multiple``.

    Returns the padded tensor and the original (H, W) for :func:`crop_to`. Reflect padding
    (mmagic's ``resize_method='pad'``) needs the pad to be smaller than the side; tiny
    inputs fall back to replicate padding.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    if mode == "reflect" and (ph >= h or pw >= w):
        mode = "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    h, w = size
    return x[..., :h, :w]


def scatter_unpool(x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """2x2 max-unpooling as a scatter into a zero map twice the size.

    ``indices`` are max_pool2d's per-plane flat positions in the (2h x 2w) input; 2x2 windows
    do not overlap, so every index is written once and this equals ``F.max_unpool2d`` with
    the default output size. The zero map's shape comes from a nearest 2x upsampling of
    ``x``, so no size is a Python number in a traced graph.
    """
    template = torch.zeros_like(F.interpolate(x, scale_factor=2.0, mode="nearest"))
    flat = template.flatten(2).scatter(2, indices.flatten(2), x.flatten(2))
    return flat.view_as(template)
