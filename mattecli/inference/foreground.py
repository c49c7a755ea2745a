"""Foreground colour from an image and its alpha: the multi-level method of Germer et al. 2020.

"Fast Multi-Level Foreground Estimation" (ICPR 2020), with the semantics of pymatting's
``estimate_foreground_ml``: per pixel, F and B minimise

    (a F + (1 - a) B - I)^2 + sum over the 4 neighbours j of
        (regularization + gradient_weight |a - a_j|) (|F - F_j|^2 + |B - B_j|^2)

solved coarse to fine: level ``i`` of ``ceil(log2(max(w, h)))`` is the image resized to
``round(w ** (i / n)) x round(h ** (i / n))`` by nearest neighbour (pymatting's index rule),
F and B start from the previous level (nearest upsampling) and from the mean colour of
``alpha > 0.9`` / ``alpha < 0.1`` pixels at the 1x1 level, with ``n_small_iterations`` on
levels no larger than ``small_size`` in both sides and ``n_big_iterations`` above. Values
are clipped to [0, 1] after every update, neighbours outside the image are clamped to the edge.

Deliberate deviation: the updates are Jacobi sweeps (every pixel from the previous
iterate), as in pymatting's CUDA and OpenCL kernels, not the in-place raster-order
Gauss-Seidel sweep of its Numba CPU version, which cannot be vectorised. It runs as a few
tensor operations per iteration in torch, on the CPU or a GPU, with no JIT.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F

REGULARIZATION = 1e-5
GRADIENT_WEIGHT = 1.0
N_SMALL_ITERATIONS = 10
N_BIG_ITERATIONS = 2
SMALL_SIZE = 32


def level_sizes(height: int, width: int) -> list[tuple[int, int]]:
    """(h, w) of each level, coarse to fine, as pymatting computes them."""
    n_levels = max(1, math.ceil(math.log2(max(width, height))))  # pymatting divides by zero on 1x1
    return [(round(height ** (i / n_levels)), round(width ** (i / n_levels))) for i in range(n_levels + 1)]


def resize_nearest(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Nearest resize of ...xHxW with pymatting's rule ``src = dst * size_src // size_dst``."""
    h0, w0 = x.shape[-2:]
    ys = torch.clamp(torch.arange(height, device=x.device) * h0 // height, max=h0 - 1)
    xs = torch.clamp(torch.arange(width, device=x.device) * w0 // width, max=w0 - 1)
    return x.index_select(-2, ys).index_select(-1, xs)


def _neighbours(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left, right, up, down neighbours of a BxCxHxW tensor, clamped at the border."""
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return p[..., 1:-1, :-2], p[..., 1:-1, 2:], p[..., :-2, 1:-1], p[..., 2:, 1:-1]


def _mean_colour(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Bx3x1x1 mean colour of the masked pixels (pymatting's ``sum / (count + 1e-5)``)."""
    m = mask.to(image.dtype)
    return (image * m).sum(dim=(2, 3), keepdim=True) / (m.sum(dim=(2, 3), keepdim=True) + 1e-5)


@contextmanager
def _single_thread_on_cpu(device: torch.device):
    """Run CPU work on one thread: these small elementwise ops gain little from more, and with
    busy cores shared by other processes, torch's thread pool made them 20-50x slower (measured)."""
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@torch.no_grad()
def estimate_foreground_tensor(image: torch.Tensor, alpha: torch.Tensor,
                               regularization: float = REGULARIZATION, gradient_weight: float = GRADIENT_WEIGHT,
                               n_small_iterations: int = N_SMALL_ITERATIONS, n_big_iterations: int = N_BIG_ITERATIONS,
                               small_size: int = SMALL_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched form: ``image`` Bx3xHxW and ``alpha`` Bx1xHxW in [0, 1] -> (F, B), each Bx3xHxW float32."""
    with _single_thread_on_cpu(image.device):
        return _multi_level(image.float(), alpha.float(), regularization, gradient_weight,
                            n_small_iterations, n_big_iterations, small_size)


def _multi_level(image: torch.Tensor, alpha: torch.Tensor, regularization: float, gradient_weight: float,
                 n_small_iterations: int, n_big_iterations: int, small_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    h0, w0 = image.shape[-2:]
    fg = _mean_colour(image, alpha > 0.9)
    bg = _mean_colour(image, alpha < 0.1)
    for h, w in level_sizes(h0, w0):
        img = resize_nearest(image, h, w)
        a0 = resize_nearest(alpha, h, w)
        fg = resize_nearest(fg, h, w)
        bg = resize_nearest(bg, h, w)
        a1 = 1.0 - a0
        weights = [regularization + gradient_weight * (a0 - an).abs() for an in _neighbours(a0)]
        weight_sum = weights[0] + weights[1] + weights[2] + weights[3]
        a00 = a0 * a0 + weight_sum
        a11 = a1 * a1 + weight_sum
        a01 = a0 * a1
        inv_det = 1.0 / (a00 * a11 - a01 * a01)
        b00, b01, b11 = inv_det * a11, -inv_det * a01, inv_det * a00
        img_f, img_b = a0 * img, a1 * img
        n_iter = n_small_iterations if (w <= small_size and h <= small_size) else n_big_iterations
        for _ in range(n_iter):
            rhs_f, rhs_b = img_f.clone(), img_b.clone()
            for wd, fn, bn in zip(weights, _neighbours(fg), _neighbours(bg)):
                rhs_f += wd * fn
                rhs_b += wd * bn
            fg = (b00 * rhs_f + b01 * rhs_b).clamp_(0.0, 1.0)
            bg = (b01 * rhs_f + b11 * rhs_b).clamp_(0.0, 1.0)
    return fg, bg


def _image_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    if image.dtype == np.uint8:
        arr = image.astype(np.float32) / 255.0
    elif image.dtype == np.uint16:
        arr = image.astype(np.float32) / 65535.0
    else:
        arr = image.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(arr)).to(device).permute(2, 0, 1)[None]


def estimate_foreground(image: np.ndarray, alpha: np.ndarray, device: str | torch.device = "cpu",
                        return_background: bool = False, **options: float) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Foreground colour, float32 HxWx3 in [0, 1] (and the background with ``return_background``).

    ``image``: HxWx3 RGB (uint8, uint16 or float in [0, 1]); ``alpha``: HxW (float in
    [0, 1] or uint8). ``options`` are the method's parameters (``regularization``,
    ``gradient_weight``, ``n_small_iterations``, ``n_big_iterations``, ``small_size``).
    """
    device = torch.device(device)
    if alpha.dtype == np.uint8:
        alpha = alpha.astype(np.float32) / 255.0
    a = torch.from_numpy(np.ascontiguousarray(alpha, dtype=np.float32)).to(device)[None, None]
    fg, bg = estimate_foreground_tensor(_image_tensor(image, device), a, **options)
    fg_np = fg[0].permute(1, 2, 0).cpu().numpy()
    if return_background:
        return fg_np, bg[0].permute(1, 2, 0).cpu().numpy()
    return fg_np
