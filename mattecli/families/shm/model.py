"""Semantic Human Matting (Chen, Ge, Xu, Zhang, Yang, Gai, ACM MM 2018): T-Net, M-Net, fusion.

The paper's three parts (models.md section 2.1), one class each:

- :class:`TNet`: PSPNet-50, i.e. a dilated ResNet-50 (output stride 8,
  :mod:`mattecli.backbones.resnet`), a pyramid pooling module (bins 1, 2, 3, 6; each a
  1x1 conv to a quarter of the trunk's width, BN, ReLU, bilinear upsampling), a 3x3 conv
  with BN/ReLU/dropout 0.1 over the concatenation and a 1x1 conv to the three trimap
  classes (:mod:`mattecli.families.shm.classes`), upsampled to the input size.
- :class:`MNet`: the DIM encoder-decoder with the paper's three differences: 6 input
  channels (RGB + the 3 trimap probabilities), batch norm after every convolution, no
  conv6/deconv6. VGG16 conv1_1..conv5_3 (torchvision layout, so ImageNet weights load with
  :func:`mattecli.backbones.vgg.load_imagenet_vgg16`) with pools after blocks 1-4 only
  (13 convs, 4 pools); the decoder is 5 unpool-and-5x5-conv rounds minus the unpool the
  missing pool5 would need (512, 256, 128, 64, 64) and a 5x5 alpha conv (6 convs, 4
  unpoolings, as tsing90's README spells it). A sigmoid keeps alpha_r in [0, 1] (DIM's
  choice; tsing90's raw output and another port's clamp are the alternatives).
- :class:`FusionModule`: ``alpha_p = F_s + U_s * alpha_r`` from the T-Net softmax.

Inference (:meth:`SemanticHumanMatting.predict`): the T-Net sees the whole image resized to
``infer_size`` x ``infer_size`` (the geometry its training samples have, see data.py; the
public ports' T-Nets fail at scales they never saw, tsing90 #26); its probabilities are
upsampled to full resolution, where the M-Net runs in tiles of ``mnet_tile`` pixels with
``mnet_margin`` pixels of context, so memory stays bounded on large images.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mattecli.backbones.resnet import ResNet
from mattecli.backbones.vgg import CONV_INDICES, run_features, vgg16_features
from mattecli.errors import MatteError
from mattecli.families.registry import register_family
from mattecli.families.shm.classes import CLASSES, probabilities_to_trimap, split_probabilities
from mattecli.tensors import crop_to, pad_to_multiple, scatter_unpool

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PYRAMID_BINS = (1, 2, 3, 6)
MNET_STRIDE = 16  # four 2x2 pools
TNET_STRIDE = 8   # dilated ResNet-50 at output stride 8
TNET_DEPTHS = (18, 34, 50)  # 50: the paper's PSPNet-50


class PyramidPooling(nn.Module):
    """PSPNet's pyramid pooling module: pooled context at 1x1, 2x2, 3x3, 6x6, concatenated."""

    def __init__(self, in_channels: int, bins: tuple[int, ...] = PYRAMID_BINS) -> None:
        super().__init__()
        reduced = in_channels // len(bins)
        self.bins = bins
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(b), nn.Conv2d(in_channels, reduced, 1, bias=False),
                          nn.BatchNorm2d(reduced), nn.ReLU(inplace=True)) for b in bins)
        self.out_channels = in_channels + reduced * len(bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = [F.interpolate(stage(x), size=size, mode="bilinear", align_corners=True) for stage in self.stages]
        return torch.cat([x, *pooled], dim=1)


class TNet(nn.Module):
    """PSPNet-50: 3-class trimap logits (background, unknown, foreground) at the input's size.
    ``depth`` 18 or 34 swaps the trunk for a shallower dilated ResNet (not the paper's: for CPU
    recipes that must learn in minutes from scratch, docs/shm.md)."""

    def __init__(self, width: int = 64, depth: int = 50) -> None:
        super().__init__()
        self.backbone = ResNet(depth, output_stride=TNET_STRIDE, width=width)
        trunk = self.backbone.out_channels
        self.ppm = PyramidPooling(trunk)
        mid = trunk // 4
        self.head = nn.Sequential(nn.Conv2d(self.ppm.out_channels, mid, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(mid), nn.ReLU(inplace=True), nn.Dropout2d(0.1))
        self.classifier = nn.Conv2d(mid, len(CLASSES), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ImageNet-normalised RGB, sides multiples of 8; returns Bx3xHxW logits."""
        size = x.shape[-2:]
        logits = self.classifier(self.head(self.ppm(self.backbone(x))))
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=True)


def mnet_layout(width: int) -> tuple[int | str, ...]:
    """VGG16's layout scaled to ``width`` (64 = VGG16) without pool5."""
    w = int(width)
    return (w, w, "M", 2 * w, 2 * w, "M", 4 * w, 4 * w, 4 * w, "M", 8 * w, 8 * w, 8 * w, "M", 8 * w, 8 * w, 8 * w)


class MNetEncoder(nn.Module):
    """VGG16 conv1_1..conv5_3 on 6 channels, BN after every conv, pools after blocks 1-4."""

    def __init__(self, width: int = 64, in_channels: int = 6) -> None:
        super().__init__()
        layout = mnet_layout(width)
        self.features = vgg16_features(in_channels, return_indices=True, layout=layout)
        widths = [int(c) for c in layout if c != "M"]
        self.norms = nn.ModuleDict({str(i): nn.BatchNorm2d(c) for i, c in zip(CONV_INDICES, widths)})
        self.out_channels = widths[-1]
        for m in self.modules():  # torchvision's VGG init (He, fan-out): what ImageNet weights replace
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Size]]:
        return run_features(self.features, x, self.norms)


class MNetDecoder(nn.Module):
    """deconv5_1, then four rounds of max-unpooling and a 5x5 conv, then the alpha conv."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        w = int(width)
        self.convs = nn.ModuleDict({
            "deconv5_1": nn.Conv2d(8 * w, 8 * w, 5, padding=2),
            "deconv4_1": nn.Conv2d(8 * w, 4 * w, 5, padding=2),
            "deconv3_1": nn.Conv2d(4 * w, 2 * w, 5, padding=2),
            "deconv2_1": nn.Conv2d(2 * w, w, 5, padding=2),
            "deconv1_1": nn.Conv2d(w, w, 5, padding=2),
        })
        self.norms = nn.ModuleDict({name: nn.BatchNorm2d(conv.out_channels) for name, conv in self.convs.items()})
        self.alpha_prediction = nn.Conv2d(w, 1, 5, padding=2)
        for m in self.modules():  # DIM's decoder init (Xavier normal, zero bias)
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)

    def _block(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norms[name](self.convs[name](x)))

    def forward(self, x: torch.Tensor, indices: list[torch.Tensor], sizes: list[torch.Size],
                traceable: bool = False) -> torch.Tensor:
        """Returns alpha logits (pre-sigmoid). ``traceable`` unpools with a scatter (same values
        for sides that are multiples of 16), which ONNX and ``torch.jit.trace`` express."""
        x = self._block("deconv5_1", x)
        for name, idx, size in zip(("deconv4_1", "deconv3_1", "deconv2_1", "deconv1_1"),
                                   reversed(indices), reversed(sizes)):
            up = scatter_unpool(x, idx) if traceable else F.max_unpool2d(x, idx, kernel_size=2, stride=2,
                                                                          output_size=size)
            x = self._block(name, up)
        return self.alpha_prediction(x)


class MNet(nn.Module):
    """RGB + trimap probabilities -> raw alpha alpha_r in [0, 1]."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.encoder = MNetEncoder(width)
        self.decoder = MNetDecoder(width)

    def forward(self, x: torch.Tensor, traceable: bool = False) -> torch.Tensor:
        """``x``: Bx6xHxW (normalised RGB, then probabilities in class order), sides multiples of 16."""
        features, indices, sizes = self.encoder(x)
        return torch.sigmoid(self.decoder(features, indices, sizes, traceable))


class FusionModule(nn.Module):
    """alpha_p = F_s + U_s * alpha_r: ~alpha_r inside the unknown band, ~F_s/(F_s+B_s) elsewhere."""

    def forward(self, probs: torch.Tensor, alpha_r: torch.Tensor) -> torch.Tensor:
        _, unknown, foreground = split_probabilities(probs)
        return foreground + unknown * alpha_r


class SemanticHumanMatting(nn.Module):
    family = "shm"
    guidance = "none"
    extra_outputs = ("trimap",)
    size_multiple = MNET_STRIDE
    #: M-Net tiles on large images: at most this many pixels a side, plus context on each side
    mnet_tile = 1024
    mnet_margin = 128
    export_notes = ("the T-Net sees the image resized to infer_size x infer_size inside the graph; "
                    "outputs: alpha (fused), trimap (0 / 0.5 / 1, the T-Net's most probable class)")

    def __init__(self, infer_size: int = 400, tnet_width: int = 64, mnet_width: int = 64,
                 tnet_depth: int = 50) -> None:
        super().__init__()
        if int(infer_size) < TNET_STRIDE or int(infer_size) % TNET_STRIDE:
            raise MatteError(f"infer_size must be a positive multiple of {TNET_STRIDE}, not {infer_size}")
        if int(tnet_depth) not in TNET_DEPTHS:
            raise MatteError(f"tnet_depth must be one of {', '.join(map(str, TNET_DEPTHS))}, not {tnet_depth}")
        self.config: dict[str, Any] = {"infer_size": int(infer_size), "tnet_width": int(tnet_width),
                                       "mnet_width": int(mnet_width), "tnet_depth": int(tnet_depth)}
        self.infer_size = int(infer_size)
        self.tnet = TNet(tnet_width, int(tnet_depth))
        self.mnet = MNet(mnet_width)
        self.fusion = FusionModule()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def set_infer_size(self, size: int) -> None:
        """The T-Net's input side at inference (``matte --infer-size``); default from the recipe."""
        if not isinstance(size, int) or size < TNET_STRIDE or size % TNET_STRIDE:
            raise MatteError(f"--infer-size {size}: expected a positive multiple of {TNET_STRIDE} "
                             f"(this network was trained at {self.config['infer_size']})")
        self.infer_size = size

    # -- the parts, as training and inference call them
    def normalise(self, image: torch.Tensor) -> torch.Tensor:
        return (image - self.mean.to(image.dtype)) / self.std.to(image.dtype)

    @staticmethod
    def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Bilinear with antialiasing when shrinking (the data pipeline shrinks with area averaging)."""
        if tuple(image.shape[-2:]) == tuple(size):
            return image
        return F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True)

    def trimap_logits(self, tnet_image: torch.Tensor) -> torch.Tensor:
        """T-Net logits at ``tnet_image``'s size (RGB in [0, 1], sides multiples of 8)."""
        return self.tnet(self.normalise(tnet_image))

    def trimap_probabilities(self, image: torch.Tensor, tnet_size: tuple[int, int] | None = None) -> torch.Tensor:
        """Softmax of the T-Net run on ``image`` resized to ``tnet_size`` (default: infer_size
        square), upsampled bilinearly to ``image``'s size."""
        size = tnet_size or (self.infer_size, self.infer_size)
        probs = torch.softmax(self.trimap_logits(self.resize(image, size)).float(), dim=1)
        return F.interpolate(probs, size=image.shape[-2:], mode="bilinear", align_corners=False).to(image.dtype)

    def mnet_input(self, image: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.normalise(image), probs.to(image.dtype)), dim=1)

    def raw_alpha(self, image: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """M-Net alpha_r for any size (reflect-pad to 16, crop back); sides a multiple of 16 in training."""
        x, size = pad_to_multiple(self.mnet_input(image, probs), MNET_STRIDE, mode="reflect")
        return crop_to(self.mnet(x), size)

    def forward(self, image: torch.Tensor, tnet_size: tuple[int, int] | None = None,
                probs: torch.Tensor | None = None, tnet_only: bool = False) -> dict[str, torch.Tensor]:
        """Training forward: ``trimap_logits`` (at ``tnet_size``), ``probs`` (full size),
        ``alpha_r`` and the fused ``alpha``. ``probs`` given (one-hot ground truth, M-Net
        pre-training) skips the T-Net; ``tnet_only`` stops after it."""
        out: dict[str, torch.Tensor] = {}
        if probs is None:
            default = tuple(image.shape[-2:]) if tnet_only else (self.infer_size, self.infer_size)
            size = tnet_size or default
            logits = self.trimap_logits(self.resize(image, size))
            out["trimap_logits"] = logits
            if tnet_only:
                return out
            probs = F.interpolate(torch.softmax(logits, dim=1), size=image.shape[-2:], mode="bilinear",
                                  align_corners=False)
        out["probs"] = probs
        out["alpha_r"] = self.raw_alpha(image, probs)
        out["alpha"] = self.fusion(probs, out["alpha_r"])
        return out

    # -- inference
    def tiled_raw_alpha(self, image: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """alpha_r in tiles of ``mnet_tile`` px with ``mnet_margin`` px of context (bounded
        memory); one pass when the image fits in a tile (batch norm is in eval mode, so tiles
        are independent)."""
        h, w = image.shape[-2:]
        tile, margin = self.mnet_tile, self.mnet_margin
        if h <= tile and w <= tile:
            return self.raw_alpha(image, probs)
        out = image.new_empty((image.shape[0], 1, h, w))
        for y0 in range(0, h, tile):
            for x0 in range(0, w, tile):
                y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
                ty0, tx0 = max(y0 - margin, 0), max(x0 - margin, 0)
                ty1, tx1 = min(y1 + margin, h), min(x1 + margin, w)
                part = self.raw_alpha(image[..., ty0:ty1, tx0:tx1], probs[..., ty0:ty1, tx0:tx1])
                out[..., y0:y1, x0:x1] = part[..., y0 - ty0:y1 - ty0, x0 - tx0:x1 - tx0]
        return out

    @torch.no_grad()
    def predict(self, image: torch.Tensor, guidance: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The registry contract: image Bx3xHxW in [0, 1], no guidance. Returns the fused
        ``alpha`` and the predicted ``trimap`` ({0, 0.5, 1}), both Bx1xHxW."""
        if guidance is not None:
            raise ValueError("SHM takes no guidance")
        # pad first, so the T-Net sees what an exported graph sees (docs/families.md, export)
        x, size = pad_to_multiple(image, MNET_STRIDE, mode="reflect")
        probs = self.trimap_probabilities(x)
        alpha = self.fusion(probs, self.tiled_raw_alpha(x, probs))
        return {"alpha": crop_to(alpha.clamp(0.0, 1.0), size), "trimap": crop_to(probabilities_to_trimap(probs), size)}

    def export_forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """``predict`` without tiling, for H and W multiples of 16 (only traceable ops)."""
        probs = self.trimap_probabilities(image)
        alpha = self.fusion(probs, self.mnet(self.mnet_input(image, probs), traceable=True))
        return {"alpha": alpha.clamp(0.0, 1.0), "trimap": probabilities_to_trimap(probs)}


@register_family("shm")
def build_shm(infer_size: int = 400, tnet_width: int = 64, mnet_width: int = 64,
              tnet_depth: int = 50) -> SemanticHumanMatting:
    return SemanticHumanMatting(infer_size=infer_size, tnet_width=tnet_width, mnet_width=mnet_width,
                                tnet_depth=tnet_depth)
