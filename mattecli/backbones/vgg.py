"""VGG16 in plain torch, with torchvision's parameter names, and the ImageNet weight loader.

torchvision is not a dependency: the layout below reproduces ``torchvision.models.vgg16``
(``features.N`` with convolutions at N = 0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28,
ReLUs and max-pools between them, then ``classifier.0/3/6``), so a torchvision ImageNet
state dict (``vgg16-397923af.pth``) loads into :class:`VGG16` unchanged and maps into the
4-channel matting encoder with :func:`load_imagenet_vgg16`.
"""
from __future__ import annotations

import os
from typing import Mapping

import torch
from torch import nn

from mattecli.backbones.weights import LoadReport, read_state_dict  # noqa: F401 - re-exported
from mattecli.errors import BadInput

#: torchvision's ``cfgs["D"]``: output channels of each 3x3 conv, "M" for a 2x2 max-pool.
VGG16_LAYOUT: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                                       512, 512, 512, "M", 512, 512, 512, "M")
#: Index of each conv inside ``features`` (conv1_1 .. conv5_3).
CONV_INDICES: tuple[int, ...] = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
#: Index of each max-pool inside ``features`` (pool1 .. pool5).
POOL_INDICES: tuple[int, ...] = (4, 9, 16, 23, 30)
FC6_IN_FEATURES = 512 * 7 * 7


def vgg16_features(in_channels: int = 3, return_indices: bool = False,
                   layout: tuple[int | str, ...] = VGG16_LAYOUT) -> nn.Sequential:
    """conv1_1 .. pool5 laid out exactly as torchvision's ``vgg16().features``.

    ``return_indices`` makes the pools return their argmax indices (for SegNet/DIM unpooling).
    ``layout`` replaces torchvision's (e.g. SHM's M-Net drops pool5 or narrows the widths);
    layer indices stay those of torchvision for every layer the layout keeps.
    """
    layers: list[nn.Module] = []
    channels = in_channels
    for item in layout:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2, return_indices=return_indices))
        else:
            layers.append(nn.Conv2d(channels, int(item), kernel_size=3, padding=1))
            layers.append(nn.ReLU(inplace=True))
            channels = int(item)
    return nn.Sequential(*layers)


def run_features(features: nn.Sequential, x: torch.Tensor, norms: nn.ModuleDict | None = None
                 ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Size]]:
    """Run ``vgg16_features(..., return_indices=True)`` on ``x``, each layer whose index (as a
    string) is in ``norms`` followed by that batch norm; returns the output, every pool's
    argmax indices and the size each pool saw (what max-unpooling needs)."""
    indices: list[torch.Tensor] = []
    sizes: list[torch.Size] = []
    for i, layer in enumerate(features):
        if i in POOL_INDICES:
            sizes.append(x.shape[-2:])
            x, idx = layer(x)
            indices.append(idx)
        else:
            x = layer(x)
            if norms is not None and str(i) in norms:
                x = norms[str(i)](x)
    return x, indices, sizes


class VGG16(nn.Module):
    """The ImageNet classifier, parameter for parameter as torchvision's ``vgg16``."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3) -> None:
        super().__init__()
        self.features = vgg16_features(in_channels)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(FC6_IN_FEATURES, 4096), nn.ReLU(inplace=True), nn.Dropout(),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def _conv_keys(state: Mapping[str, torch.Tensor]) -> list[int]:
    """Indices N of ``features.N.weight`` that are conv kernels (4-D), in order."""
    found = []
    for key, value in state.items():
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == "features" and parts[2] == "weight" and value.dim() == 4:
            found.append(int(parts[1]))
    return sorted(found)


def load_imagenet_vgg16(encoder: nn.Module, state: Mapping[str, torch.Tensor],
                        source: str | os.PathLike = "weights") -> LoadReport:
    """Copy ImageNet VGG16 weights into a matting encoder; returns what was loaded and skipped.

    ``encoder`` has ``features`` in the torchvision layout (:func:`vgg16_features`, any
    number of input channels), optionally ``norms`` (a ``ModuleDict`` of BatchNorm2d keyed
    by conv index) and ``conv6``. Rules (DIM, and huochaitiantang's ``chg_model.py``):

    - the 13 convs copy over in order (plain ``vgg16`` or ``vgg16_bn`` files); conv1_1's
      extra input channels (the trimap) get zero weights, so at the start the network sees
      exactly the RGB features ImageNet trained;
    - ``vgg16_bn`` batch-norm statistics load into ``norms`` when the encoder has them;
    - ``classifier.0`` (fc6, 4096 x 25088) becomes a 7x7x512 -> 4096 ``conv6`` when the
      encoder's conv6 has that shape (the paper's variant); otherwise it is skipped;
    - everything else (fc7, fc8) is skipped.
    """
    report = LoadReport()
    targets = dict(encoder.state_dict())
    assigned: dict[str, torch.Tensor] = {}
    file_convs = _conv_keys(state)
    if len(file_convs) != len(CONV_INDICES):
        raise BadInput(source, f"expected the 13 conv layers of VGG16, found {len(file_convs)}")
    norms = getattr(encoder, "norms", None)
    for file_index, conv_index in zip(file_convs, CONV_INDICES):
        weight = state[f"features.{file_index}.weight"]
        target = targets[f"features.{conv_index}.weight"]
        if weight.shape[0] != target.shape[0] or weight.shape[2:] != target.shape[2:] or weight.shape[1] > target.shape[1]:
            raise BadInput(source, f"features.{file_index}.weight has shape {tuple(weight.shape)}, "
                                   f"the encoder expects {tuple(target.shape)}")
        expanded = torch.zeros_like(target)
        expanded[:, :weight.shape[1]] = weight.to(target.dtype)
        assigned[f"features.{conv_index}.weight"] = expanded
        report.loaded.append(f"features.{file_index}.weight")
        bias_key = f"features.{file_index}.bias"
        if bias_key in state:
            assigned[f"features.{conv_index}.bias"] = state[bias_key].to(target.dtype)
            report.loaded.append(bias_key)
        if norms is not None and str(conv_index) in norms:
            bn_index = file_index + 1  # vgg16_bn puts BatchNorm2d right after each conv
            for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
                key = f"features.{bn_index}.{name}"
                if key in state and state[key].dim() <= 1:
                    assigned[f"norms.{conv_index}.{name}"] = state[key]
                    report.loaded.append(key)
    conv6 = targets.get("conv6.weight")
    fc6_w, fc6_b = state.get("classifier.0.weight"), state.get("classifier.0.bias")
    if (conv6 is not None and fc6_w is not None and fc6_w.shape == (conv6.shape[0], FC6_IN_FEATURES)
            and tuple(conv6.shape[1:]) == (512, 7, 7)):
        # torch.flatten of a 512x7x7 map is channel-major, so a plain reshape is exact.
        assigned["conv6.weight"] = fc6_w.reshape(conv6.shape).to(conv6.dtype)
        report.loaded.append("classifier.0.weight")
        if fc6_b is not None:
            assigned["conv6.bias"] = fc6_b.to(conv6.dtype)
            report.loaded.append("classifier.0.bias")
    used = set(report.loaded)
    report.skipped = [k for k in state if k not in used]
    report.not_in_file = [k for k in targets if k not in assigned and not k.endswith("num_batches_tracked")]
    encoder.load_state_dict(assigned, strict=False)
    return report
