"""ResNet-18, ResNet-34 and ResNet-50 in plain torch, with torchvision's parameter names and dilation.

The layout reproduces ``torchvision.models.resnet34/resnet50`` (v1.5: the Bottleneck's
stride sits on its 3x3 conv): ``conv1, bn1, layer1..layer4`` with ``layerN.K.conv1/bn1/...``
and ``layerN.0.downsample.0/1``, then ``fc``. A torchvision ImageNet state dict therefore
loads unchanged (:func:`load_imagenet_resnet`).

``output_stride`` 8 or 16 replaces the strides of layer3/layer4 (8) or layer4 (16) by
dilation exactly as torchvision's ``replace_stride_with_dilation`` does (the first block of a
dilated layer keeps the previous dilation, the following blocks use the new one), so
PSPNet- and DeepLab-style heads sit on it. Unlike torchvision, BasicBlock accepts dilation
too, so ResNet-34 can also run at output stride 8 or 16.
"""
from __future__ import annotations

import os
from typing import Mapping

import torch
from torch import nn

from mattecli.backbones.weights import LoadReport
from mattecli.errors import BadInput

#: blocks per stage of each depth, and the block type
RESNET_LAYOUTS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
}


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs with an identity (or projected) shortcut: ResNet-18/34."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride, dilation)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes, dilation=dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided, dilated), 1x1 expand x4: ResNet-50 (torchvision v1.5)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride, dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """A torchvision-compatible ResNet trunk; ``forward`` returns the features of every stage.

    ``features(x)`` gives ``{"stem": /2 after conv1, "layer1": /4, ..., "layer4": /32 or less
    with dilation}``; ``fc`` exists only with ``num_classes`` (ImageNet classification).
    ``width`` (torchvision: 64) scales every stage's channels; only 64 loads ImageNet weights,
    smaller widths exist for CPU tests and demonstrations.
    """

    def __init__(self, depth: int = 50, in_channels: int = 3, output_stride: int = 32,
                 num_classes: int | None = None, width: int = 64) -> None:
        super().__init__()
        if depth not in RESNET_LAYOUTS:
            raise ValueError(f"ResNet depth {depth} is not supported (choose {sorted(RESNET_LAYOUTS)})")
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, not {output_stride}")
        kind, counts = RESNET_LAYOUTS[depth]
        block = BasicBlock if kind == "basic" else Bottleneck
        dilate = {8: (False, True, True), 16: (False, False, True), 32: (False, False, False)}[output_stride]
        if width < 1:
            raise ValueError(f"width must be positive, not {width}")
        self.depth, self.in_channels, self.output_stride = depth, in_channels, output_stride
        self.inplanes, self.dilation = width, 1
        self.conv1 = nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, counts[0])
        self.layer2 = self._make_layer(block, 2 * width, counts[1], stride=2, dilate=dilate[0])
        self.layer3 = self._make_layer(block, 4 * width, counts[2], stride=2, dilate=dilate[1])
        self.layer4 = self._make_layer(block, 8 * width, counts[3], stride=2, dilate=dilate[2])
        self.out_channels = 8 * width * block.expansion
        self.fc = nn.Linear(self.out_channels, num_classes) if num_classes else None
        self._init_weights()

    def _make_layer(self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int,
                    stride: int = 1, dilate: bool = False) -> nn.Sequential:
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample, previous_dilation)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, dilation=self.dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        """torchvision's initialisation: Kaiming-normal (fan_out) convs, unit BN."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        stem = self.relu(self.bn1(self.conv1(x)))
        x1 = self.layer1(self.maxpool(stem))
        x2 = self.layer2(x1)
        x3 = self.layer3(x2)
        x4 = self.layer4(x3)
        return {"stem": stem, "layer1": x1, "layer2": x2, "layer3": x3, "layer4": x4}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)["layer4"]
        if self.fc is None:
            return x
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1))


def resnet34(**kwargs) -> ResNet:
    return ResNet(34, **kwargs)


def resnet50(**kwargs) -> ResNet:
    return ResNet(50, **kwargs)


def load_imagenet_resnet(model: ResNet, state: Mapping[str, torch.Tensor],
                         source: str | os.PathLike = "weights") -> LoadReport:
    """Copy a torchvision ImageNet ResNet state dict into ``model``; returns what was loaded.

    Every trunk tensor must be in the file with its shape (else one-line BadInput naming the
    key); ``conv1.weight``'s extra input channels (trimap, click maps, ...) are zero so the
    network starts from exactly the ImageNet RGB features; ``fc`` is loaded only when the
    model has one of the same shape, otherwise skipped.
    """
    report = LoadReport()
    targets = model.state_dict()
    assigned: dict[str, torch.Tensor] = {}
    for key, target in targets.items():
        if key not in state:
            if key.endswith("num_batches_tracked"):
                continue
            if key.startswith("fc."):
                report.not_in_file.append(key)
                continue
            raise BadInput(source, f"not a ResNet-{model.depth} state dict: '{key}' is missing")
        value = state[key]
        if key == "conv1.weight" and value.dim() == 4 and value.shape[1] < target.shape[1] \
                and value.shape[0] == target.shape[0] and value.shape[2:] == target.shape[2:]:
            expanded = torch.zeros_like(target)
            expanded[:, :value.shape[1]] = value.to(target.dtype)
            value = expanded
        if value.shape != target.shape:
            raise BadInput(source, f"{key} has shape {tuple(value.shape)}, ResNet-{model.depth} expects "
                                   f"{tuple(target.shape)}")
        assigned[key] = value.to(target.dtype)
        report.loaded.append(key)
    report.skipped = [k for k in state if k not in assigned]
    model.load_state_dict(assigned, strict=False)
    return report
