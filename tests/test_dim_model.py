"""Deep Image Matting network, VGG16 weight loading and the DIM training family (CPU, small)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mattecli.errors import BadInput, MatteError
from mattecli.io.checkpoint import save_checkpoint
from mattecli.families.dim.model import DeepImageMatting, Decoder, Encoder
from mattecli.families.registry import build_model, load_model
from mattecli.backbones.vgg import VGG16, load_imagenet_vgg16, read_state_dict
from mattecli.families.dim.family import FAMILY, clamp_known

# torchvision's vgg16 conv positions and widths, written out independently of the code under test
TV_CONVS = [(0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256), (12, 256, 256),
            (14, 256, 256), (17, 256, 512), (19, 512, 512), (21, 512, 512), (24, 512, 512),
            (26, 512, 512), (28, 512, 512)]
TV_LINEAR = [(0, 25088, 4096), (3, 4096, 4096), (6, 4096, 1000)]


def _inputs(b: int, h: int, w: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(b, 3, h, w, generator=g)
    trimap = torch.tensor([0.0, 0.5, 1.0])[torch.randint(0, 3, (b, 1, h, w), generator=g)]
    return image, trimap


@pytest.mark.parametrize("conv6", ["1x1", "3x3", "fc6"])
def test_shapes_for_each_conv6_variant(conv6):
    torch.manual_seed(0)
    net = build_model("dim", {"conv6": conv6, "refine": True}).eval()
    assert net.family == "dim" and net.guidance == "trimap"
    image, trimap = _inputs(2, 64, 64)
    with torch.no_grad():
        out = net(net.prepare_input(image, trimap), refine=True)
    for key in ("raw_alpha", "alpha", "refined"):
        assert out[key].shape == (2, 1, 64, 64)
    assert torch.all((out["alpha"] >= 0) & (out["alpha"] <= 1))
    image, trimap = _inputs(1, 45, 70)  # not multiples of 32
    alpha = net.predict(image, trimap)["alpha"]
    assert alpha.shape == (1, 1, 45, 70)
    assert float(alpha.min()) >= 0 and float(alpha.max()) <= 1


def test_conv6_variants_have_the_published_shapes():
    assert Encoder("1x1").conv6.weight.shape == (512, 512, 1, 1)
    assert Encoder("3x3").conv6.weight.shape == (512, 512, 3, 3)
    assert Encoder("fc6").conv6.weight.shape == (4096, 512, 7, 7)
    assert Decoder(4096).deconv6_1.weight.shape == (512, 4096, 1, 1)
    with pytest.raises(ValueError):
        Encoder("5x5")


def test_predict_reflect_pads_to_32_and_crops_back():
    torch.manual_seed(1)
    net = DeepImageMatting().eval()
    image, trimap = _inputs(1, 40, 50, seed=2)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = torch.cat([(image - mean) / std, trimap], 1)
    x = F.pad(x, (0, 64 - 50, 0, 64 - 40), mode="reflect")
    with torch.no_grad():
        expected = net(x, refine=False)["alpha"][..., :40, :50]
    assert torch.allclose(net.predict(image, trimap)["alpha"], expected, atol=1e-6)


def test_uint8_trimap_feeds_the_same_values_as_the_contract():
    net = DeepImageMatting()
    image, trimap = _inputs(1, 32, 32)
    as_uint8 = torch.zeros_like(trimap, dtype=torch.uint8)
    as_uint8[trimap == 0.5] = 128
    as_uint8[trimap == 1.0] = 255
    assert torch.equal(net.prepare_input(image, as_uint8), net.prepare_input(image, trimap))
    assert set(net.prepare_input(image, as_uint8)[:, 3].unique().tolist()) == {0.0, 0.5, 1.0}


def test_unpool_hand_made_case():
    x = torch.tensor([[1., 5., 2., 0.],
                      [3., 4., 8., 1.],
                      [0., 0., 1., 1.],
                      [9., 2., 1., 7.]])[None, None]
    pooled, idx = F.max_pool2d(x, 2, 2, return_indices=True)
    assert pooled.flatten().tolist() == [5., 8., 9., 7.]
    up = Decoder.unpool(torch.tensor([[10., 20.], [30., 40.]])[None, None], idx, x.shape[-2:])
    expected = np.zeros((4, 4))
    expected[0, 1], expected[1, 2], expected[3, 0], expected[3, 3] = 10, 20, 30, 40
    assert np.array_equal(up[0, 0].numpy(), expected)


def test_decoder_unpools_by_the_encoders_indices():
    torch.manual_seed(0)
    net = DeepImageMatting().eval()
    image, trimap = _inputs(1, 64, 96, seed=5)
    x = net.prepare_input(image, trimap)
    captured = {}
    hook = net.decoder.deconv5_1.register_forward_pre_hook(lambda m, args: captured.setdefault("in", args[0]))
    with torch.no_grad():
        net(x, refine=False)
        features, indices, sizes = net.encoder(x)
        values = F.relu(net.decoder.deconv6_1(features))
    hook.remove()
    # scatter each deconv6 value to where pool5 found its maximum (flat index into the 4x6 plane)
    b, c, h, w = values.shape
    expected = torch.zeros(b, c, sizes[-1][0] * sizes[-1][1])
    expected.scatter_(2, indices[-1].view(b, c, -1), values.view(b, c, -1))
    assert captured["in"].shape == (1, 512, 4, 6)
    assert torch.equal(captured["in"], expected.view(b, c, *sizes[-1]))


def test_refinement_is_a_residual_on_the_stage1_logits():
    torch.manual_seed(0)
    net = DeepImageMatting(refine=True).eval()
    image, trimap = _inputs(1, 32, 32)
    x = net.prepare_input(image, trimap)
    with torch.no_grad():
        net.refiner.refine_pred.weight.zero_()
        net.refiner.refine_pred.bias.fill_(0.7)
        out = net(x, refine=True)
    assert torch.allclose(out["refined"], torch.sigmoid(out["raw_alpha"] + 0.7), atol=1e-6)
    assert net.refiner.refine_conv1.weight.shape == (64, 4, 3, 3)
    # refine flag chooses the output of predict
    assert torch.allclose(net.predict(image, trimap)["alpha"], out["refined"].clamp(0, 1), atol=1e-6)
    net.refine = False
    assert torch.allclose(net.predict(image, trimap)["alpha"], out["alpha"], atol=1e-6)


def test_decoder_is_xavier_initialised_and_batch_norm_is_off_by_default():
    torch.manual_seed(0)
    net = DeepImageMatting()
    w = net.decoder.deconv5_1.weight.detach()  # 512 -> 512, 5x5: fan_in = fan_out = 12800
    assert float(w.std()) == pytest.approx(math.sqrt(2.0 / (2 * 512 * 25)), rel=0.02)
    assert float(net.decoder.deconv5_1.bias.detach().abs().max()) == 0.0
    # the encoder starts as torchvision's VGG (He, fan-out) until ImageNet weights replace it
    w = net.encoder.features[28].weight.detach()
    assert float(w.std()) == pytest.approx(math.sqrt(2.0 / (512 * 9)), rel=0.02)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    with_bn = DeepImageMatting(batch_norm=True)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in with_bn.modules()) == 13 + 1 + 6


def test_vgg16_names_match_torchvision():
    shapes = {k: tuple(v.shape) for k, v in VGG16().state_dict().items()}
    expected = {}
    for i, cin, cout in TV_CONVS:
        expected[f"features.{i}.weight"], expected[f"features.{i}.bias"] = (cout, cin, 3, 3), (cout,)
    for i, fin, fout in TV_LINEAR:
        expected[f"classifier.{i}.weight"], expected[f"classifier.{i}.bias"] = (fout, fin), (fout,)
    assert shapes == expected


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    """A randomly initialised torchvision-format VGG16 state dict, written by the test."""
    g = torch.Generator().manual_seed(42)
    state = {}
    for i, cin, cout in TV_CONVS:
        state[f"features.{i}.weight"] = torch.randn(cout, cin, 3, 3, generator=g)
        state[f"features.{i}.bias"] = torch.randn(cout, generator=g)
    for i, fin, fout in TV_LINEAR:
        state[f"classifier.{i}.weight"] = torch.randn(fout, fin, generator=g)
        state[f"classifier.{i}.bias"] = torch.randn(fout, generator=g)
    path = tmp_path_factory.mktemp("vgg") / "vgg16.pth"
    torch.save(state, path)
    return path, state


def test_vgg16_state_dict_loads_into_the_4_channel_encoder(vgg_file):
    path, state = vgg_file
    encoder = Encoder("1x1")
    conv6_before = encoder.conv6.weight.clone()
    report = load_imagenet_vgg16(encoder, read_state_dict(path), source=path)
    mine = encoder.state_dict()
    for i, cin, _ in TV_CONVS:
        if i == 0:
            assert torch.equal(mine["features.0.weight"][:, :3], state["features.0.weight"])
            assert torch.count_nonzero(mine["features.0.weight"][:, 3]) == 0  # trimap channel
            assert mine["features.0.weight"].shape[1] == 4
        else:
            assert torch.equal(mine[f"features.{i}.weight"], state[f"features.{i}.weight"])
        assert torch.equal(mine[f"features.{i}.bias"], state[f"features.{i}.bias"])
    assert len(report.loaded) == 26
    assert sorted(report.skipped) == sorted(f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias"))
    assert sorted(report.not_in_file) == ["conv6.bias", "conv6.weight"]
    assert torch.equal(encoder.conv6.weight, conv6_before)
    # the loaded encoder computes VGG's conv1_1 response on RGB whatever the trimap says
    x = torch.rand(1, 4, 8, 8)
    ref = F.conv2d(x[:, :3], state["features.0.weight"], state["features.0.bias"], padding=1)
    assert torch.allclose(encoder.features[0](x), ref, atol=1e-5)


def test_vgg16_fc6_becomes_the_papers_conv6(vgg_file):
    path, state = vgg_file
    encoder = Encoder("fc6")
    report = load_imagenet_vgg16(encoder, read_state_dict(path))
    assert "classifier.0.weight" in report.loaded and report.not_in_file == []
    # conv6 on a 7x7 map, read at the centre with padding 3, equals fc6 on the flattened map
    x = torch.randn(1, 512, 7, 7)
    fc6 = x.flatten(1) @ state["classifier.0.weight"].T + state["classifier.0.bias"]
    conv = F.conv2d(x, encoder.conv6.weight, encoder.conv6.bias)  # no padding: 1x1 output
    assert torch.allclose(conv.flatten(1), fc6, rtol=1e-4, atol=1e-3)


def test_vgg16_bn_file_loads_convs_and_statistics(tmp_path):
    # torchvision's vgg16_bn: conv at 0, 3, 7, ..., BatchNorm2d right after each conv
    g = torch.Generator().manual_seed(1)
    bn_convs = [0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40]
    state = {}
    for j, (_, cin, cout) in zip(bn_convs, TV_CONVS):
        state[f"features.{j}.weight"] = torch.randn(cout, cin, 3, 3, generator=g)
        state[f"features.{j}.bias"] = torch.randn(cout, generator=g)
        state[f"features.{j + 1}.weight"] = torch.rand(cout, generator=g)
        state[f"features.{j + 1}.bias"] = torch.randn(cout, generator=g)
        state[f"features.{j + 1}.running_mean"] = torch.randn(cout, generator=g)
        state[f"features.{j + 1}.running_var"] = torch.rand(cout, generator=g)
        state[f"features.{j + 1}.num_batches_tracked"] = torch.tensor(7)
    encoder = Encoder(batch_norm=True)
    load_imagenet_vgg16(encoder, state)
    assert torch.equal(encoder.features[2].weight, state["features.3.weight"])
    assert torch.equal(encoder.features[28].weight, state["features.40.weight"])
    assert torch.equal(encoder.norms["28"].running_var, state["features.41.running_var"])
    assert torch.equal(encoder.norms["0"].weight, state["features.1.weight"])
    plain = Encoder(batch_norm=False)
    report = load_imagenet_vgg16(plain, state)
    assert torch.equal(plain.features[5].weight, state["features.7.weight"])
    assert "features.1.running_mean" in report.skipped


def test_vgg16_loader_refuses_other_files(tmp_path):
    bad = tmp_path / "notvgg.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, bad)
    with pytest.raises(BadInput, match="13 conv layers"):
        load_imagenet_vgg16(Encoder(), read_state_dict(bad), source=bad)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(BadInput, match="junk.pth"):
        read_state_dict(junk)
    # a text file makes torch's weights-only unpickler fail with a KeyError, not an UnpicklingError
    text = tmp_path / "text.pth"
    text.write_bytes(b"junk\n")
    with pytest.raises(BadInput, match="text.pth: not a loadable backbone weights file"):
        read_state_dict(text)
    with pytest.raises(BadInput, match="text.pth: not a loadable checkpoint"):
        load_model(text)


def test_prepare_model_loads_backbone_from_recipe(vgg_file):
    path, state = vgg_file
    net = DeepImageMatting()
    FAMILY.prepare_model(net, {"backbone_weights": str(path)}, "encoder")
    assert torch.equal(net.encoder.features[28].weight, state["features.28.weight"])


def test_checkpoint_round_trip_through_the_registry(tmp_path):
    torch.manual_seed(3)
    net = build_model("dim", FAMILY.model_config({"stage": "joint", "conv6": "3x3"}))
    assert net.refine is True
    path = tmp_path / "best.pt"
    save_checkpoint(path, {"family": "dim", "model_config": net.config, "model": net.state_dict()})
    loaded, _ = load_model(path)
    image, trimap = _inputs(1, 40, 40)
    assert torch.equal(loaded.predict(image, trimap)["alpha"], net.eval().predict(image, trimap)["alpha"])


# ---------------------------------------------------------------------- the training family

def _batch(b: int = 2, size: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    alpha = ((xx.float() - size / 2) / 8).sigmoid()[None, None].repeat(b, 1, 1, 1)
    trimap = torch.full((b, 1, size, size), 128, dtype=torch.uint8)
    trimap[alpha < 0.02] = 0
    trimap[alpha > 0.98] = 255
    fg = torch.rand(b, 3, 1, 1, generator=g).expand(b, 3, size, size).clone()
    bg = torch.rand(b, 3, size, size, generator=g)
    return {"image": alpha * fg + (1 - alpha) * bg, "alpha": alpha, "fg": fg, "bg": bg, "trimap": trimap}


def test_model_config_follows_the_stage():
    assert FAMILY.model_config({"stage": "encoder"})["refine"] is False
    assert FAMILY.model_config({"stage": "refine"})["refine"] is True
    assert FAMILY.model_config({"stage": "joint", "conv6": "fc6", "batch_norm": True}) == \
        {"conv6": "fc6", "batch_norm": True, "refine": True}
    with pytest.raises(MatteError, match="recipe key conv6 = '2x2'"):  # one CLI line, not a traceback
        FAMILY.model_config({"conv6": "2x2"})


def test_a_few_steps_lower_the_loss():
    torch.manual_seed(0)
    net = DeepImageMatting()
    params = list(FAMILY.trainable_parameters(net, "encoder"))
    assert all(p.requires_grad for p in net.encoder.parameters())
    assert not any(p.requires_grad for p in net.refiner.parameters())
    opt = torch.optim.Adam(params, lr=2e-4)
    batch = _batch(b=1, size=32)
    net.train()
    losses = []
    for _ in range(10):
        parts = FAMILY.losses(net, batch, "encoder")
        assert set(parts) == {"loss", "alpha", "comp"}
        opt.zero_grad()
        parts["loss"].backward()
        opt.step()
        losses.append(parts["loss"].item())
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("batch_norm", [False, True])
def test_refine_stage_freezes_the_encoder_decoder(batch_norm):
    torch.manual_seed(0)
    net = DeepImageMatting(batch_norm=batch_norm, refine=True)
    params = list(FAMILY.trainable_parameters(net, "refine"))
    assert {id(p) for p in params} == {id(p) for p in net.refiner.parameters()}
    frozen = {k: v.clone() for k, v in net.state_dict().items() if not k.startswith("refiner.")}
    refiner_before = {k: v.clone() for k, v in net.refiner.state_dict().items()}
    opt = torch.optim.Adam(params, lr=1e-3)
    net.train()
    for seed in range(2):
        parts = FAMILY.losses(net, _batch(b=1, size=32, seed=seed), "refine")
        assert set(parts) == {"loss", "refine"}
        opt.zero_grad()
        parts["loss"].backward()
        opt.step()
    for k, v in net.state_dict().items():
        if not k.startswith("refiner."):
            assert torch.equal(v, frozen[k]), k  # weights and batch-norm statistics
    assert any(not torch.equal(v, refiner_before[k]) for k, v in net.refiner.state_dict().items())
    # joint trains everything and reports all three losses
    assert len(list(FAMILY.trainable_parameters(net, "joint"))) == len(list(net.parameters()))
    assert set(FAMILY.losses(net, _batch(b=1, size=32), "joint")) == {"loss", "alpha", "comp", "refine"}


def test_family_predict_clamps_known_regions():
    torch.manual_seed(0)
    net = DeepImageMatting().eval()
    batch = _batch(b=1, size=48)
    alpha = FAMILY.predict(net, batch, "encoder")
    assert alpha.shape == (1, 1, 48, 48)
    assert torch.all(alpha[batch["trimap"] == 255] == 1) and torch.all(alpha[batch["trimap"] == 0] == 0)
    unknown = batch["trimap"] == 128
    raw = net.infer(batch["image"], batch["trimap"], refine=False)
    assert torch.equal(alpha[unknown], raw[unknown])
    float_trimap = torch.tensor([[[[0.0, 0.5, 1.0]]]])
    assert clamp_known(torch.full((1, 1, 1, 3), 0.3), float_trimap).flatten().tolist() == \
        pytest.approx([0.0, 0.3, 1.0])
