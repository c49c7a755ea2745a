"""Click-based matting with uncertainty estimation (Wei et al., CVPR 2021, arXiv 2012.08323).

No public code exists; the paper (through its abstract and a reading note) fixes: the input
RGB + a click map U (+1 foreground disks, -1 background disks, 0 elsewhere), one encoder with
an alpha decoder and an uncertainty decoder (a per-pixel Laplace scale sigma), and a local
refinement network applied to the k x k patches (k = 64) of highest predicted uncertainty,
as many as the user's budget allows. Everything else here is **ours** (docs/click.md):

- :class:`Encoder`: a ResNet (34 by default, torchvision layout, ImageNet weights by path)
  on 4 channels; loading ImageNet weights sets the U channel's stem weights to zero (the
  network starts from the ImageNet features), while from scratch U's stem weights are drawn
  like the RGB channels' (zero there held U back: docs/train.md);
- :class:`AlphaDecoder` / :class:`UncertaintyDecoder`: U-Net decoders over the encoder's
  five scales (bilinear 2x upsampling, skip concatenation, two 3x3 conv-BN-ReLU per level)
  and a full-resolution head that also sees the 4-channel input; alpha through a sigmoid,
  sigma through softplus plus ``sigma_min`` (strictly positive);
- :class:`LocalRefinementNetwork`: four 3x3 convs on an image + alpha patch, whose output
  is added to the alpha's logit; its last conv starts at zero, so an untrained refiner
  returns the alpha unchanged;
- patch selection (:func:`select_patches`): greedy non-maximum suppression on the mean
  sigma of every k x k window (stride k/4): take the most uncertain window, drop every
  window that overlaps it, repeat until the budget or the windows run out.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mattecli.backbones.resnet import ResNet
from mattecli.data.clicks import network_scale, radius_for_network
from mattecli.families.registry import register_family
from mattecli.tensors import crop_to, pad_to_multiple

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STRIDE = 32
#: clamp of alpha before its logit in the refiner (keeps 0/1 alphas finite)
_LOGIT_EPS = 1e-4


def conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Encoder(nn.Module):
    """ResNet trunk on RGB + U; returns the five feature scales (/2 .. /32)."""

    def __init__(self, depth: int = 34) -> None:
        super().__init__()
        # U's stem weights: He-initialised like RGB's; zeroed by load_imagenet_resnet on an ImageNet start
        self.resnet = ResNet(depth, in_channels=4)
        expansion = self.resnet.out_channels // 512
        self.channels = (64, 64 * expansion, 128 * expansion, 256 * expansion, 512 * expansion)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f = self.resnet.features(x)
        return [f["stem"], f["layer1"], f["layer2"], f["layer3"], f["layer4"]]


class UNetDecoder(nn.Module):
    """Bilinear 2x up, concat skip, two conv-BN-ReLU per level; a head at full resolution."""

    def __init__(self, encoder_channels: tuple[int, ...], widths: tuple[int, ...], in_channels: int = 4) -> None:
        super().__init__()
        if len(widths) != len(encoder_channels):
            raise ValueError(f"decoder needs {len(encoder_channels)} widths, got {len(widths)}")
        deep = list(reversed(encoder_channels))  # /32, /16, /8, /4, /2
        self.bottleneck = conv_bn_relu(deep[0], widths[0])
        ins = list(widths[:-1]) + [widths[-1]]   # what each level receives from below
        skips = deep[1:] + [in_channels]         # /16, /8, /4, /2 features, then the input itself
        outs = list(widths[1:]) + [widths[-1]]
        self.blocks = nn.ModuleList(nn.Sequential(conv_bn_relu(cin + skip, cout), conv_bn_relu(cout, cout))
                                    for cin, skip, cout in zip(ins, skips, outs))
        self.head = nn.Conv2d(widths[-1], 1, 3, padding=1)

    def forward(self, features: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Pre-activation map Bx1xHxW at the input's resolution."""
        skips = list(reversed(features[:-1])) + [x]
        y = self.bottleneck(features[-1])
        for block, skip in zip(self.blocks, skips):
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = block(torch.cat((y, skip), dim=1))
        return self.head(y)


class AlphaDecoder(UNetDecoder):
    """Raw alpha: the decoder's output through a sigmoid."""

    def forward(self, features: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(super().forward(features, x))


class UncertaintyDecoder(UNetDecoder):
    """Laplace scale sigma > 0: softplus of the decoder's output plus ``sigma_min``."""

    def __init__(self, encoder_channels: tuple[int, ...], widths: tuple[int, ...], sigma_min: float = 1e-3) -> None:
        super().__init__(encoder_channels, widths)
        self.sigma_min = float(sigma_min)

    def forward(self, features: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return F.softplus(super().forward(features, x)) + self.sigma_min


class LocalRefinementNetwork(nn.Module):
    """Image + alpha patch -> refined alpha patch (a residual on the alpha's logit)."""

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(4, channels, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=2, dilation=2), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True))
        self.out = nn.Conv2d(channels, 1, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, rgb: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """``rgb`` normalised Bx3xkxk, ``alpha`` Bx1xkxk in [0, 1] -> refined alpha in [0, 1]."""
        a = alpha.clamp(_LOGIT_EPS, 1.0 - _LOGIT_EPS)
        delta = self.out(self.body(torch.cat((rgb, alpha), dim=1)))
        return torch.sigmoid(torch.log(a) - torch.log1p(-a) + delta)


# ----------------------------------------------------------------------------- patches

Box = tuple[int, int, int, int]  # (y0, x0, y1, x1), end-exclusive


def select_patches(score: torch.Tensor, size: int, budget: int, stride: int | None = None) -> list[Box]:
    """Up to ``budget`` non-overlapping ``size`` x ``size`` windows of highest mean ``score``.

    ``score`` is HxW (sigma for inference, |error| for mining). Windows lie inside the image
    (an image smaller than ``size`` gives one window of its own size) at a ``stride`` grid
    (default size/4) plus the last row/column flush with the border. Greedy: the best window
    is taken, every window overlapping it is dropped, and so on. Ties: raster order.
    """
    if budget <= 0:
        return []
    h, w = score.shape[-2:]
    kh, kw = min(size, h), min(size, w)
    stride = max(1, stride or size // 4)
    ys = sorted(set(range(0, h - kh + 1, stride)) | {h - kh})
    xs = sorted(set(range(0, w - kw + 1, stride)) | {w - kw})
    s = score.detach().reshape(1, 1, h, w).float()
    # window means from an integral image: exact, any window grid
    integral = F.pad(s.cumsum(-1).cumsum(-2), (1, 0, 1, 0))[0, 0]
    y0 = torch.tensor(ys)[:, None]
    x0 = torch.tensor(xs)[None, :]
    sums = integral[y0 + kh, x0 + kw] - integral[y0, x0 + kw] - integral[y0 + kh, x0] + integral[y0, x0]
    means = (sums / (kh * kw)).cpu().numpy().ravel()
    order = np.argsort(-means, kind="stable")
    taken: list[Box] = []
    grid_w = len(xs)
    for idx in order:
        by, bx = ys[idx // grid_w], xs[idx % grid_w]
        if all(by >= t[2] or by + kh <= t[0] or bx >= t[3] or bx + kw <= t[1] for t in taken):
            taken.append((by, bx, by + kh, bx + kw))
            if len(taken) == budget:
                break
    return taken


def paste_patches(alpha: torch.Tensor, boxes: list[Box], patches: torch.Tensor) -> torch.Tensor:
    """A copy of ``alpha`` (1xHxW or HxW) with ``patches[i]`` written into ``boxes[i]``."""
    out = alpha.clone()
    for (y0, x0, y1, x1), patch in zip(boxes, patches):
        out[..., y0:y1, x0:x1] = patch.reshape(out[..., y0:y1, x0:x1].shape)
    return out


# ----------------------------------------------------------------------------- the network

def signed_map(clicks: torch.Tensor) -> torch.Tensor:
    """U (Bx1xHxW in {-1, 0, 1}) from the registry's Bx2xHxW positive/negative click maps."""
    return clicks[:, :1] - clicks[:, 1:2]


class ClickMatting(nn.Module):
    family = "click"
    guidance = "clicks"
    extra_outputs = ("uncertainty",)
    size_multiple = STRIDE
    export_notes = ("uncertainty-guided local refinement is not in the graph: its patch choice depends on the "
                    "predicted sigma (data-dependent control flow); the graph gives the global alpha and sigma "
                    "(matte --refine-patches 0). Run the refiner on the top-sigma patches yourself, or use matte.")

    def __init__(self, depth: int = 34, decoder_widths: tuple[int, ...] = (256, 128, 64, 48, 32),
                 refiner_channels: int = 32, sigma_min: float = 1e-3, patch_size: int = 64,
                 refine_patches: int = 0, click_radius: float = 15.0, train_size: int = 320,
                 global_side: int = 1024) -> None:
        super().__init__()
        widths = tuple(int(w) for w in decoder_widths)
        self.config: dict[str, Any] = {
            "depth": int(depth), "decoder_widths": list(widths), "refiner_channels": int(refiner_channels),
            "sigma_min": float(sigma_min), "patch_size": int(patch_size), "refine_patches": int(refine_patches),
            "click_radius": float(click_radius), "train_size": int(train_size), "global_side": int(global_side)}
        self.patch_size = int(patch_size)
        self.refine_patches = int(refine_patches)
        self.click_radius = float(click_radius)
        self.train_size = int(train_size)
        self.global_side = int(global_side)
        self.encoder = Encoder(depth)
        self.alpha_decoder = AlphaDecoder(self.encoder.channels, widths)
        self.uncertainty_decoder = UncertaintyDecoder(self.encoder.channels, widths, sigma_min)
        self.refiner = LocalRefinementNetwork(refiner_channels)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    # -- the click map's radius
    def network_scale(self, height: int, width: int) -> float:
        """Network input pixels per image pixel in :meth:`global_pass` (< 1 beyond ``global_side``)."""
        return network_scale(height, width, self.global_side)

    def click_radius_for(self, height: int, width: int) -> float:
        """Disk radius in image pixels for an image of ``height`` x ``width``: ``click_radius``
        network pixels, as training draws them (:func:`mattecli.data.clicks.radius_for_network`)."""
        return radius_for_network(self.click_radius, self.network_scale(height, width))

    # -- the global network
    def normalise(self, image: torch.Tensor) -> torch.Tensor:
        return (image - self.mean.to(image.dtype)) / self.std.to(image.dtype)

    def prepare_input(self, image: torch.Tensor, clicks: torch.Tensor) -> torch.Tensor:
        """Bx4xHxW: ImageNet-normalised RGB and U."""
        return torch.cat((self.normalise(image), signed_map(clicks).to(image.dtype)), dim=1)

    def forward(self, x: torch.Tensor | None, uncertainty: bool = True,
                patches: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """``x`` from :meth:`prepare_input`, sides multiples of 32: ``alpha`` and ``sigma``.

        With ``patches = (rgb, alpha)`` (normalised RGB Nx3xkxk, alpha Nx1xkxk) only the local
        refinement network runs and ``refined`` is returned (training goes through ``forward``
        so a DistributedDataParallel wrapper sees every trained part).
        """
        if patches is not None:
            return {"refined": self.refiner(*patches)}
        features = self.encoder(x)
        out = {"alpha": self.alpha_decoder(features, x)}
        if uncertainty:
            out["sigma"] = self.uncertainty_decoder(features, x)
        return out

    def global_pass(self, image: torch.Tensor, clicks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(alpha, sigma) Bx1xHxW for any size: images longer than ``global_side`` are matted at
        that side and the maps upsampled (memory stays bounded); the image reflect-padded to 32, U
        zero-padded (a mirrored disk would be a click nobody made)."""
        h, w = image.shape[-2:]
        scale = self.network_scale(h, w)
        if scale < 1.0:
            size = (max(1, round(h * scale)), max(1, round(w * scale)))
            small_image = F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True)
            small_clicks = (F.interpolate(clicks, size=size, mode="area") > 0.5).to(clicks.dtype)
            x = self.prepare_input(small_image, small_clicks)
        else:
            x = self.prepare_input(image, clicks)
        padded, size = pad_to_multiple(x, STRIDE, mode="reflect")
        padded[:, 3:, size[0]:] = 0  # the image is mirrored into the pad, its clicks are not
        padded[:, 3:, :, size[1]:] = 0
        out = self(padded)
        alpha, sigma = crop_to(out["alpha"], size), crop_to(out["sigma"], size)
        if scale < 1.0:
            alpha = F.interpolate(alpha, size=(h, w), mode="bilinear", align_corners=False)
            sigma = F.interpolate(sigma, size=(h, w), mode="bilinear", align_corners=False)
        return alpha.clamp(0.0, 1.0), sigma

    # -- local refinement
    def refine_boxes(self, image: torch.Tensor, alpha: torch.Tensor, boxes: list[Box]) -> torch.Tensor:
        """Refined alpha of each box of one image (``image`` 3xHxW, ``alpha`` 1xHxW), a list of patches."""
        rgb = self.normalise(image[None])[0]
        same = len({(y1 - y0, x1 - x0) for y0, x0, y1, x1 in boxes}) == 1
        if same:  # one batched call
            crops_rgb = torch.stack([rgb[:, y0:y1, x0:x1] for y0, x0, y1, x1 in boxes])
            crops_alpha = torch.stack([alpha[:, y0:y1, x0:x1] for y0, x0, y1, x1 in boxes])
            return self.refiner(crops_rgb, crops_alpha)
        return [self.refiner(rgb[None, :, y0:y1, x0:x1], alpha[None, :, y0:y1, x0:x1])[0]
                for y0, x0, y1, x1 in boxes]

    def refine(self, image: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor,
               budget: int) -> tuple[torch.Tensor, list[list[Box]]]:
        """Refine the ``budget`` most uncertain patches of every image; (alpha, boxes per image)."""
        if budget <= 0:
            return alpha, [[] for _ in range(alpha.shape[0])]
        refined, all_boxes = [], []
        for b in range(alpha.shape[0]):
            boxes = select_patches(sigma[b, 0], self.patch_size, budget)
            patches = self.refine_boxes(image[b], alpha[b], boxes)
            refined.append(paste_patches(alpha[b], boxes, patches))
            all_boxes.append(boxes)
        return torch.stack(refined), all_boxes

    @torch.no_grad()
    def predict(self, image: torch.Tensor, clicks: torch.Tensor, refine_patches: int | None = None) -> dict[str, Any]:
        """The registry contract: image Bx3xHxW in [0, 1], clicks Bx2xHxW (positive, negative).

        Returns ``alpha`` (refined), ``uncertainty`` (sigma of the global pass, Bx1xHxW) and
        ``patches``: per image the list of refined boxes ``(y0, x0, y1, x1)`` (end-exclusive),
        most uncertain first. ``refine_patches`` overrides the model's budget (0: off).
        """
        budget = self.refine_patches if refine_patches is None else int(refine_patches)
        alpha, sigma = self.global_pass(image, clicks)
        alpha, boxes = self.refine(image, alpha, sigma, budget)
        return {"alpha": alpha.clamp(0.0, 1.0), "uncertainty": sigma, "patches": boxes}

    def export_forward(self, image: torch.Tensor, clicks: torch.Tensor) -> dict[str, torch.Tensor]:
        """The global network only (H, W multiples of 32): alpha and sigma, no refinement."""
        out = self(self.prepare_input(image, clicks))
        return {"alpha": out["alpha"].clamp(0.0, 1.0), "uncertainty": out["sigma"]}


@register_family("click")
def build_click(depth: int = 34, decoder_widths: tuple[int, ...] | list[int] = (256, 128, 64, 48, 32),
                refiner_channels: int = 32, sigma_min: float = 1e-3, patch_size: int = 64, refine_patches: int = 0,
                click_radius: float = 15.0, train_size: int = 320, global_side: int = 1024) -> ClickMatting:
    if depth not in (18, 34, 50):
        raise TypeError(f"depth must be 18, 34 or 50, not {depth!r}")
    if patch_size < 4 or refine_patches < 0 or click_radius <= 0 or train_size < 1 or global_side < 0:
        raise TypeError("patch_size >= 4, refine_patches >= 0, click_radius > 0, train_size >= 1, global_side >= 0")
    return ClickMatting(depth, tuple(decoder_widths), refiner_channels, sigma_min, patch_size, refine_patches,
                        click_radius, train_size, global_side)

