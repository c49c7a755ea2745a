"""Deep Image Matting (Xu, Price, Cohen, Huang, CVPR 2017): encoder-decoder plus refinement.

The paper's two networks, layer for layer as the faithful reproductions build them
(mmagic's ``VGG16`` + ``PlainDecoder`` + ``PlainRefiner``):

- :class:`Encoder`: VGG16 conv1_1 .. pool5 taking RGB + trimap (4 channels), then the 14th
  conv, "conv6". Three variants: ``"1x1"`` (mmagic, 512 -> 512, the default: its
  reproduction reaches the paper's numbers at a fraction of the cost), ``"3x3"``
  (huochaitiantang's change, better stage-1 SAD) and ``"fc6"`` (the paper's 7x7x4096
  layer, whose weights are VGG's fc6 reshaped; about 103 M parameters).
- :class:`Decoder`: deconv6 1x1 -> 512, then five rounds of max-unpooling by the encoder's
  pool indices and a 5x5 conv (512, 256, 128, 64, 64), a 5x5 alpha prediction conv and a
  sigmoid. Xavier initialised.
- :class:`RefinementNetwork`: RGB + stage-1 alpha through three 3x3x64 convs with ReLU and
  a 3x3 conv to one channel, added to the stage-1 pre-sigmoid output before the sigmoid.

Batch norm is off by default (the paper has none); ``batch_norm=True`` puts it after every
encoder and decoder conv except the alpha prediction layer. Without ImageNet weights the
encoder starts from torchvision's VGG init (He); the decoder and refiner from Xavier. Either
way conv1_1's weights on the trimap channel start at zero, as the paper initialises them
(ImageNet has no such channel): at the start the encoder sees the image alone.

``width`` (1.0, the paper's) multiplies every encoder, decoder and refiner width: a mattecli option for
CPU budgets without ImageNet weights (``recipes/dim-quick.toml``); ImageNet VGG16 weights only
load at width 1.

Two model options exist for imported weights (``mattecli weights import mmagic-dim``), with
defaults that keep mattecli's own behaviour: ``trimap_unknown_value`` (the value the unknown
region takes in the trimap channel: 0.5 here, 128/255 in mmagic, which feeds trimap/255) and
``refiner`` (false: no refinement network at all, for stage-1 checkpoints that have none).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mattecli.tensors import crop_to, pad_to_multiple, scatter_unpool  # noqa: F401 - scatter_unpool re-exported
from mattecli.families.registry import register_family
from mattecli.backbones.vgg import CONV_INDICES, VGG16_LAYOUT, run_features, vgg16_features

CONV6_VARIANTS = ("1x1", "3x3", "fc6")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STRIDE = 32  # five 2x2 pools


def _xavier(module: nn.Module) -> None:
    """mmcv's ``xavier_init`` as mmagic calls it: normal distribution, gain 1, bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_normal_(m.weight)
            nn.init.zeros_(m.bias)


def _he(module: nn.Module) -> None:
    """torchvision's VGG init (He normal, fan-out), the state ImageNet weights replace.

    Only matters when no ImageNet weights are given: with mmagic's Xavier init the plain
    14-layer encoder's output shrinks to ~1e-3 of its input and training from scratch stalls.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)


def scaled(channels: int, width: float) -> int:
    """A layer width times the network's ``width`` multiplier (at least 4 channels)."""
    return channels if width == 1.0 else max(4, int(round(channels * width)))


def _conv6(variant: str, width: float = 1.0) -> nn.Conv2d:
    c = scaled(512, width)
    if variant == "1x1":
        return nn.Conv2d(c, c, kernel_size=1)
    if variant == "3x3":
        return nn.Conv2d(c, c, kernel_size=3, padding=1)
    if variant == "fc6":
        return nn.Conv2d(c, scaled(4096, width), kernel_size=7, padding=3)
    raise ValueError(f"conv6 must be one of {', '.join(CONV6_VARIANTS)}, not {variant!r}")


class Encoder(nn.Module):
    """VGG16 conv1_1..pool5 on RGB + trimap, then conv6; returns features and pool indices.

    Parameter names match torchvision (``features.N``) so ImageNet weights load by name
    (:func:`mattecli.backbones.vgg.load_imagenet_vgg16`).
    """

    def __init__(self, conv6: str = "1x1", batch_norm: bool = False, in_channels: int = 4,
                 width: float = 1.0) -> None:
        super().__init__()
        layout = tuple(c if c == "M" else scaled(int(c), width) for c in VGG16_LAYOUT)
        self.features = vgg16_features(in_channels, return_indices=True, layout=layout)
        widths = [int(c) for c in layout if c != "M"]
        self.norms = (nn.ModuleDict({str(i): nn.BatchNorm2d(w) for i, w in zip(CONV_INDICES, widths)})
                      if batch_norm else None)
        self.conv6 = _conv6(conv6, width)
        self.conv6_norm = nn.BatchNorm2d(self.conv6.out_channels) if batch_norm else None
        self.out_channels = self.conv6.out_channels
        _he(self)
        with torch.no_grad():  # the paper's init of the channels beyond RGB (the trimap): zero
            self.features[0].weight[:, 3:].zero_()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Size]]:
        x, indices, sizes = run_features(self.features, x, self.norms)
        x = self.conv6(x)
        if self.conv6_norm is not None:
            x = self.conv6_norm(x)
        return F.relu(x), indices, sizes


class Decoder(nn.Module):
    """Unpooling decoder: each 2x upsampling puts values back where the encoder's max was."""

    WIDTHS = (("deconv5_1", 512, 512), ("deconv4_1", 512, 256), ("deconv3_1", 256, 128),
              ("deconv2_1", 128, 64), ("deconv1_1", 64, 64))

    def __init__(self, in_channels: int = 512, batch_norm: bool = False, width: float = 1.0) -> None:
        super().__init__()
        self.deconv6_1 = nn.Conv2d(in_channels, scaled(512, width), kernel_size=1)
        for name, cin, cout in self.WIDTHS:
            setattr(self, name, nn.Conv2d(scaled(cin, width), scaled(cout, width), kernel_size=5, padding=2))
        self.alpha_prediction = nn.Conv2d(scaled(64, width), 1, kernel_size=5, padding=2)
        self.norms = (nn.ModuleDict({"deconv6_1": nn.BatchNorm2d(scaled(512, width)),
                                     **{name: nn.BatchNorm2d(scaled(cout, width)) for name, _, cout in self.WIDTHS}})
                      if batch_norm else None)
        _xavier(self)

    def _conv_relu(self, name: str, x: torch.Tensor) -> torch.Tensor:
        x = getattr(self, name)(x)
        if self.norms is not None:
            x = self.norms[name](x)
        return F.relu(x)

    @staticmethod
    def unpool(x: torch.Tensor, indices: torch.Tensor, size: torch.Size) -> torch.Tensor:
        return F.max_unpool2d(x, indices, kernel_size=2, stride=2, output_size=size)

    def forward(self, x: torch.Tensor, indices: list[torch.Tensor], sizes: list[torch.Size],
                traceable: bool = False) -> torch.Tensor:
        """Returns the pre-sigmoid alpha (logits), which the refinement network adds to.

        ``traceable`` unpools with :func:`scatter_unpool` (same values when every pooled side
        was even, i.e. inputs are multiples of 32), which ONNX and ``torch.jit.trace`` express
        without fixing the image size."""
        x = self._conv_relu("deconv6_1", x)
        for (name, _, _), idx, size in zip(self.WIDTHS, reversed(indices), reversed(sizes)):
            x = self._conv_relu(name, scatter_unpool(x, idx) if traceable else self.unpool(x, idx, size))
        return self.alpha_prediction(x)


class RefinementNetwork(nn.Module):
    """Stage 2: sharpens the stage-1 alpha from the image; a residual on the logits."""

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        self.refine_conv1 = nn.Conv2d(4, channels, kernel_size=3, padding=1)
        self.refine_conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.refine_conv3 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.refine_pred = nn.Conv2d(channels, 1, kernel_size=3, padding=1)
        _xavier(self)

    def forward(self, rgb: torch.Tensor, alpha: torch.Tensor, raw_alpha: torch.Tensor) -> torch.Tensor:
        x = torch.cat((rgb, alpha), dim=1)
        x = F.relu(self.refine_conv1(x))
        x = F.relu(self.refine_conv2(x))
        x = F.relu(self.refine_conv3(x))
        return torch.sigmoid(raw_alpha + self.refine_pred(x))


def trimap_channel(trimap: torch.Tensor, unknown_value: float = 0.5) -> torch.Tensor:
    """The trimap as the network's 4th channel in {0, ``unknown_value``, 1}.

    Accepts uint8 files' values {0, 128, 255} (training batches) or the registry contract's
    floats {0, 0.5, 1}, so training and ``predict`` feed the network identical values.
    """
    if trimap.is_floating_point():
        if unknown_value == 0.5:
            return trimap
        return torch.where(trimap == 0.5, torch.full_like(trimap, unknown_value), trimap)
    t = trimap.to(torch.float32)
    return (t == 255).to(t.dtype) + unknown_value * (t == 128).to(t.dtype)


class DeepImageMatting(nn.Module):
    family = "dim"
    guidance = "trimap"
    size_multiple = STRIDE

    def __init__(self, conv6: str = "1x1", batch_norm: bool = False, refine: bool = False,
                 trimap_unknown_value: float = 0.5, refiner: bool = True, width: float = 1.0) -> None:
        super().__init__()
        if not 0.0 < float(width) <= 1.0:
            raise ValueError(f"width must lie in (0, 1], not {width!r}")
        if refine and not refiner:
            raise ValueError("refine=True needs the refinement network (refiner=True)")
        if not 0.0 < float(trimap_unknown_value) < 1.0:
            raise ValueError(f"trimap_unknown_value must lie in (0, 1), not {trimap_unknown_value!r}")
        self.config: dict[str, Any] = {"conv6": conv6, "batch_norm": bool(batch_norm), "refine": bool(refine)}
        # only written when not the default, so checkpoints of mattecli's own DIM keep their old config
        if float(trimap_unknown_value) != 0.5:
            self.config["trimap_unknown_value"] = float(trimap_unknown_value)
        if not refiner:
            self.config["refiner"] = False
        if float(width) != 1.0:
            self.config["width"] = float(width)
        self.refine = bool(refine)
        self.trimap_unknown_value = float(trimap_unknown_value)
        self.encoder = Encoder(conv6, batch_norm, width=float(width))
        self.decoder = Decoder(self.encoder.out_channels, batch_norm, width=float(width))
        self.refiner = RefinementNetwork(scaled(64, float(width))) if refiner else None
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def prepare_input(self, image: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
        """Bx4xHxW network input: ImageNet-normalised RGB in [0,1], trimap in {0, 0.5, 1}
        (the unknown value is ``trimap_unknown_value``)."""
        rgb = (image - self.mean.to(image.dtype)) / self.std.to(image.dtype)
        return torch.cat((rgb, trimap_channel(trimap, self.trimap_unknown_value).to(rgb.dtype)), dim=1)

    def forward(self, x: torch.Tensor, refine: bool = True, traceable: bool = False) -> dict[str, torch.Tensor]:
        """``x`` from :meth:`prepare_input`, sides multiples of 32.

        Returns ``raw_alpha`` (stage-1 logits), ``alpha`` (stage-1 sigmoid) and, with
        ``refine``, ``refined`` (the refinement network's alpha).
        """
        features, indices, sizes = self.encoder(x)
        raw_alpha = self.decoder(features, indices, sizes, traceable=traceable)
        alpha = torch.sigmoid(raw_alpha)
        out = {"raw_alpha": raw_alpha, "alpha": alpha}
        if refine:
            if self.refiner is None:
                raise ValueError("this DIM network has no refinement network (refiner=False)")
            out["refined"] = self.refiner(x[:, :3], alpha, raw_alpha)
        return out

    def infer(self, image: torch.Tensor, trimap: torch.Tensor, refine: bool | None = None) -> torch.Tensor:
        """Alpha Bx1xHxW in [0,1] for any size: reflect-pad to a multiple of 32, crop back."""
        refine = self.refine if refine is None else refine
        x, size = pad_to_multiple(self.prepare_input(image, trimap), STRIDE, mode="reflect")
        out = self(x, refine=refine)
        return crop_to(out["refined" if refine else "alpha"], size).clamp(0.0, 1.0)

    @torch.no_grad()
    def predict(self, image: torch.Tensor, trimap: torch.Tensor) -> dict[str, torch.Tensor]:
        """The registry contract: image Bx3xHxW in [0,1], trimap Bx1xHxW in {0, 0.5, 1}."""
        return {"alpha": self.infer(image, trimap)}

    def export_forward(self, image: torch.Tensor, trimap: torch.Tensor) -> dict[str, torch.Tensor]:
        """:meth:`predict` for sides that are multiples of 32, with traceable unpooling
        (docs/families.md, export)."""
        out = self(self.prepare_input(image, trimap), refine=self.refine, traceable=True)
        return {"alpha": out["refined" if self.refine else "alpha"].clamp(0.0, 1.0)}


@register_family("dim")
def build_dim(conv6: str = "1x1", batch_norm: bool = False, refine: bool = False,
              trimap_unknown_value: float = 0.5, refiner: bool = True, width: float = 1.0) -> DeepImageMatting:
    return DeepImageMatting(conv6=conv6, batch_norm=batch_norm, refine=refine,
                            trimap_unknown_value=trimap_unknown_value, refiner=refiner, width=width)
