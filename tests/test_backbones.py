"""ResNet-34/50 backbones: torchvision's names and sizes, dilation, and the ImageNet loader."""
from __future__ import annotations

import pytest
import torch

from mattecli.backbones.resnet import ResNet, load_imagenet_resnet
from mattecli.errors import BadInput

# torchvision's published parameter counts (models.resnet34/resnet50 with the 1000-class fc)
TORCHVISION_PARAMETERS = {34: 21_797_672, 50: 25_557_032}


@pytest.mark.parametrize("depth", [34, 50])
def test_parameter_count_and_names_match_torchvision(depth):
    model = ResNet(depth, num_classes=1000)
    assert sum(p.numel() for p in model.parameters()) == TORCHVISION_PARAMETERS[depth]
    keys = model.state_dict().keys()
    assert {"conv1.weight", "bn1.running_var", "layer1.0.conv1.weight", "layer4.2.bn2.weight", "fc.bias"} <= keys
    assert ("layer1.0.downsample.0.weight" in keys) is (depth == 50)  # 64 -> 256 channels in a Bottleneck
    assert ("layer4.2.conv3.weight" in keys) is (depth == 50)
    assert "layer2.0.downsample.1.running_mean" in keys


@pytest.mark.parametrize("depth", [34, 50])
def test_output_stride_by_dilation_as_torchvision_does_it(depth):
    x = torch.rand(1, 3, 64, 64)
    sizes, counts = {}, set()
    for stride in (32, 16, 8):
        model = ResNet(depth, output_stride=stride).eval()
        counts.add(sum(p.numel() for p in model.parameters()))
        with torch.no_grad():
            sizes[stride] = model(x).shape[-1]
        conv = "conv2" if depth == 50 else "conv1"
        # the first block of a dilated layer keeps the previous dilation, the others take the new one
        first, second = model.layer4[0], model.layer4[1]
        expected = {32: (1, 1), 16: (1, 2), 8: (2, 4)}[stride]
        assert (getattr(first, conv).dilation[0], getattr(second, conv).dilation[0]) == expected
    assert sizes == {32: 2, 16: 4, 8: 8}
    assert len(counts) == 1  # dilation changes no weight


def test_imagenet_weights_load_with_extra_channels_zeroed():
    torch.manual_seed(0)
    imagenet = ResNet(34, num_classes=1000).eval()
    with torch.no_grad():
        for m in imagenet.modules():  # non-trivial statistics, so BN is exercised
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    four = ResNet(34, in_channels=4, output_stride=32).eval()
    report = load_imagenet_resnet(four, imagenet.state_dict(), source="r34.pth")
    assert torch.equal(four.conv1.weight[:, 3], torch.zeros_like(four.conv1.weight[:, 3]))
    assert "fc.weight" in report.skipped
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        want = imagenet.features(x)["layer4"]
        got = four(torch.cat((x, torch.rand(1, 1, 64, 64)), 1))
    assert torch.allclose(got, want, atol=1e-5)
    state = imagenet.state_dict()
    del state["layer3.1.conv2.weight"]
    with pytest.raises(BadInput, match=r"r34.pth: not a ResNet-34 state dict: 'layer3.1.conv2.weight' is missing"):
        load_imagenet_resnet(ResNet(34), state, source="r34.pth")
    with pytest.raises(BadInput, match="layer1.0.conv1.weight has shape"):
        load_imagenet_resnet(ResNet(34), ResNet(50).state_dict(), source="r50.pth")
