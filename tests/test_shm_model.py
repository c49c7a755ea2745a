"""SHM's networks, class order, fusion, losses and ImageNet loading, against values computed here."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mattecli.errors import BadInput, MatteError
from mattecli.families.registry import build_model, get_family
from mattecli.families.shm import classes
from mattecli.families.shm.classes import (CLASSES, classes_to_onehot, probabilities_to_trimap,
                                           trimap_tensor_to_classes, trimap_to_classes)
from mattecli.families.shm.losses import prediction_loss, shm_loss, trimap_loss
from mattecli.families.shm.model import FusionModule, MNet, SemanticHumanMatting, TNet

TINY = {"infer_size": 16, "tnet_width": 4, "mnet_width": 4}


def test_class_order_is_background_unknown_foreground_everywhere():
    assert CLASSES == ("background", "unknown", "foreground")
    trimap = np.array([[0, 128, 255]], np.uint8)
    assert trimap_to_classes(trimap).tolist() == [[0, 1, 2]]
    assert trimap_tensor_to_classes(torch.from_numpy(trimap)).tolist() == [[0, 1, 2]]
    onehot = classes_to_onehot(torch.tensor([[[0, 1, 2]]]))
    assert onehot[0, :, 0].tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    # the trimap output: the most probable class as 0 / 0.5 / 1
    probs = torch.tensor([[0.7, 0.1, 0.2], [0.2, 0.5, 0.3], [0.1, 0.3, 0.6]]).T.reshape(1, 3, 1, 3)
    assert probabilities_to_trimap(probs).flatten().tolist() == [0.0, 0.5, 1.0]


def test_shapes_of_every_part():
    torch.manual_seed(0)
    tnet = TNet(width=4).eval()
    assert tnet(torch.rand(2, 3, 24, 40)).shape == (2, 3, 24, 40)
    assert tnet.backbone.output_stride == 8
    assert [s[0].output_size for s in tnet.ppm.stages] == [1, 2, 3, 6]
    mnet = MNet(width=4).eval()
    assert mnet.encoder.features[0].in_channels == 6
    with torch.no_grad():
        x = mnet(torch.rand(2, 6, 32, 48))
    assert x.shape == (2, 1, 32, 48) and float(x.min()) >= 0 and float(x.max()) <= 1
    # no conv6 / deconv6, no pool5: 13 convs with 13 batch norms, 4 pools, 6 decoder convs
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in mnet.encoder.features) == 4
    assert len(mnet.encoder.norms) == 13 and len(mnet.decoder.convs) + 1 == 6
    assert not any("conv6" in name for name, _ in mnet.named_modules())
    net = build_model("shm", TINY).eval()
    out = net.predict(torch.rand(1, 3, 21, 35))
    assert out["alpha"].shape == out["trimap"].shape == (1, 1, 21, 35)
    assert set(torch.unique(out["trimap"]).tolist()) <= {0.0, 0.5, 1.0}
    assert net.guidance == "none" and net.extra_outputs == ("trimap",)


def test_fusion_algebra_on_hand_made_probabilities(monkeypatch):
    # (B, U, F) per pixel, alpha_r per pixel; alpha_p = F + U * alpha_r computed by hand
    bg, unknown, fg = [0.7, 0.1, 0.05, 0.2], [0.2, 0.8, 0.05, 0.5], [0.1, 0.1, 0.9, 0.3]
    alpha_r = [0.5, 0.25, 0.9, 0.0]
    want = [0.1 + 0.2 * 0.5, 0.1 + 0.8 * 0.25, 0.9 + 0.05 * 0.9, 0.3 + 0.5 * 0.0]
    probs = torch.tensor([bg, unknown, fg]).reshape(1, 3, 1, 4)
    alpha = torch.tensor(alpha_r).reshape(1, 1, 1, 4)
    got = FusionModule()(probs, alpha).flatten().tolist()
    assert got == pytest.approx(want, abs=1e-7)
    # the bug of the public ports, (bg, fg, unknown): P(unknown) + P(fg) * alpha_r. This test sees it.
    monkeypatch.setattr(classes, "UNKNOWN_CLASS", 2)
    monkeypatch.setattr(classes, "FOREGROUND_CLASS", 1)
    swapped = FusionModule()(probs, alpha).flatten().tolist()
    assert swapped != pytest.approx(want, abs=1e-3)


def test_network_forward_is_the_fusion_of_its_parts():
    torch.manual_seed(1)
    net = build_model("shm", TINY).eval()
    image = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        out = net(image)
        logits = net.tnet(net.normalise(net.resize(image, (16, 16))))
        probs = torch.nn.functional.interpolate(torch.softmax(logits, 1), size=(32, 32), mode="bilinear",
                                                align_corners=False)
        alpha_r = net.mnet(torch.cat((net.normalise(image), probs), 1))
    assert torch.allclose(out["alpha"], probs[:, 2:3] + probs[:, 1:2] * alpha_r, atol=1e-6)
    assert torch.allclose(net.predict(image)["alpha"], out["alpha"], atol=1e-6)


def test_losses_against_hand_computation():
    eps = 1e-6
    alpha = torch.tensor([0.2, 0.9, 0.5, 1.0]).reshape(1, 1, 2, 2)
    gt = torch.tensor([0.0, 1.0, 0.5, 0.75]).reshape(1, 1, 2, 2)
    fg = torch.tensor([[1.0, 0.5, 0.0, 0.2], [0.0, 0.5, 1.0, 0.4], [0.3, 0.3, 0.3, 0.6]]).reshape(1, 3, 2, 2)
    bg = torch.tensor([[0.0, 0.1, 0.2, 0.3], [1.0, 0.9, 0.8, 0.7], [0.5, 0.5, 0.5, 0.5]]).reshape(1, 3, 2, 2)
    merged = gt * fg + (1 - gt) * bg  # a real composite of the true fg and bg
    a, g = alpha.flatten().tolist(), gt.flatten().tolist()
    l_alpha = sum(math.sqrt((p - t) ** 2 + eps ** 2) for p, t in zip(a, g)) / 4
    comp = [[a[i] * fg[0, c].flatten()[i].item() + (1 - a[i]) * bg[0, c].flatten()[i].item()
             - merged[0, c].flatten()[i].item() for i in range(4)] for c in range(3)]
    l_comp = sum(math.sqrt(d * d + eps ** 2) for row in comp for d in row) / 12
    # L_t: cross-entropy over all 4 pixels, by hand
    logits = torch.tensor([[2.0, 0.0, -1.0, 0.5], [0.0, 1.0, 0.0, 0.5], [-1.0, 0.0, 3.0, 0.5]]).reshape(1, 3, 2, 2)
    target = torch.tensor([0, 1, 2, 1]).reshape(1, 1, 2, 2)
    cols = logits.reshape(3, 4).T.tolist()
    l_t = sum(math.log(sum(math.exp(v) for v in col)) - col[t] for col, t in zip(cols, [0, 1, 2, 1])) / 4
    assert trimap_loss(logits, target).item() == pytest.approx(l_t, rel=1e-6)
    whole = prediction_loss(alpha, gt, fg, bg, merged, torch.ones_like(gt))
    assert whole["alpha"].item() == pytest.approx(l_alpha, rel=1e-5)
    assert whole["comp"].item() == pytest.approx(l_comp, rel=1e-5)
    total = shm_loss(alpha, logits, target, gt, fg, bg, merged)
    assert total["loss"].item() == pytest.approx(0.5 * l_alpha + 0.5 * l_comp + 0.01 * l_t, rel=1e-5)
    # M-Net pre-training: the unknown band only (pixels 1 and 2 here)
    band = torch.tensor([0.0, 1.0, 1.0, 0.0]).reshape(1, 1, 2, 2)
    part = prediction_loss(alpha, gt, fg, bg, merged, band)
    want = (math.sqrt((a[1] - g[1]) ** 2 + eps ** 2) + math.sqrt((a[2] - g[2]) ** 2 + eps ** 2)) / 2
    assert part["alpha"].item() == pytest.approx(want, rel=1e-5)


def _torchvision_resnet50_state(generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The key names and shapes of torchvision's resnet50().state_dict(), written out by hand."""
    state: dict[str, torch.Tensor] = {}

    def conv(name, cout, cin, k):
        state[f"{name}.weight"] = torch.randn(cout, cin, k, k, generator=generator)

    def bn(name, c):
        state[f"{name}.weight"] = torch.rand(c, generator=generator)
        state[f"{name}.bias"] = torch.randn(c, generator=generator)
        state[f"{name}.running_mean"] = torch.randn(c, generator=generator)
        state[f"{name}.running_var"] = torch.rand(c, generator=generator) + 0.5
        state[f"{name}.num_batches_tracked"] = torch.tensor(7)

    conv("conv1", 64, 3, 7)
    bn("bn1", 64)
    inplanes = 64
    for layer, (planes, blocks) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3)), start=1):
        for b in range(blocks):
            p = f"layer{layer}.{b}"
            conv(f"{p}.conv1", planes, inplanes, 1)
            bn(f"{p}.bn1", planes)
            conv(f"{p}.conv2", planes, planes, 3)
            bn(f"{p}.bn2", planes)
            conv(f"{p}.conv3", planes * 4, planes, 1)
            bn(f"{p}.bn3", planes * 4)
            if b == 0:
                conv(f"{p}.downsample.0", planes * 4, inplanes, 1)
                bn(f"{p}.downsample.1", planes * 4)
            inplanes = planes * 4
    state["fc.weight"] = torch.randn(1000, 2048, generator=generator)
    state["fc.bias"] = torch.randn(1000, generator=generator)
    return state


def test_resnet50_imagenet_state_dict_loads_into_the_tnet(tmp_path):
    state = _torchvision_resnet50_state(torch.Generator().manual_seed(3))
    path = tmp_path / "resnet50.pth"
    torch.save({f"module.{k}": v for k, v in state.items()}, path)  # a DataParallel save, as found in the wild
    net = build_model("shm", {"infer_size": 16, "tnet_width": 64, "mnet_width": 4})
    get_family("shm").prepare_model(net, {"backbone_weights": str(path)}, "tnet")
    loaded = net.tnet.backbone.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items() if not k.startswith("fc."))
    assert net.tnet.backbone.fc is None  # the classifier is not part of PSPNet
    # a file of another network is one line naming the key
    torch.save({k: v for k, v in state.items() if not k.startswith("layer4")}, tmp_path / "cut.pth")
    with pytest.raises(BadInput, match="layer4"):
        get_family("shm").prepare_model(net, {"backbone_weights": str(tmp_path / "cut.pth")}, "tnet")


def test_vgg16_weights_load_into_the_mnet_with_zero_extra_channels(tmp_path):
    g = torch.Generator().manual_seed(4)
    layout = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
    state, cin, index = {}, 3, 0
    for item in layout:  # torchvision vgg16().features: conv, relu (, pool)
        if item == "M":
            index += 1
            continue
        state[f"features.{index}.weight"] = torch.randn(item, cin, 3, 3, generator=g)
        state[f"features.{index}.bias"] = torch.randn(item, generator=g)
        cin, index = item, index + 2
    torch.save(state, tmp_path / "vgg16.pth")
    net = build_model("shm", {"infer_size": 16, "tnet_width": 4, "mnet_width": 64})
    get_family("shm").prepare_model(net, {"mnet_backbone_weights": str(tmp_path / "vgg16.pth")}, "tnet")
    first = net.mnet.encoder.features[0].weight
    assert torch.equal(first[:, :3], state["features.0.weight"]) and torch.count_nonzero(first[:, 3:]) == 0
    assert torch.equal(net.mnet.encoder.features[28].weight, state["features.28.weight"])


def test_infer_size_is_checked():
    net = build_model("shm", TINY)
    with pytest.raises(MatteError, match="multiple of 8"):
        net.set_infer_size(12)
    net.set_infer_size(24)
    assert net.infer_size == 24 and net.config["infer_size"] == 16
    with pytest.raises(MatteError, match="infer_size"):
        get_family("shm").model_config({"infer_size": 20})
    with pytest.raises(MatteError, match="e2e_crop"):
        get_family("shm").model_config({"infer_size": 16, "full_size": 64, "e2e_crop": 48})


def test_large_images_run_the_mnet_in_tiles_that_stitch_exactly():
    torch.manual_seed(2)
    net = build_model("shm", TINY).eval()
    image = torch.rand(1, 3, 40, 56)
    whole = net.predict(image)["alpha"]
    calls = []
    real = net.raw_alpha
    net.raw_alpha = lambda x, p: calls.append(tuple(x.shape[-2:])) or real(x, p)
    net.mnet_tile, net.mnet_margin = 16, 64  # context wider than the image: every tile sees it all
    tiled = net.predict(image)["alpha"]
    assert len(calls) == 12 and torch.allclose(tiled, whole, atol=1e-6)
    calls.clear()
    net.mnet_margin = 8  # bounded memory: each pass sees at most 16 + 2 * 8 pixels a side
    near = net.predict(image)["alpha"]
    assert max(max(c) for c in calls) <= 32 and float((near - whole).abs().max()) < 0.1
