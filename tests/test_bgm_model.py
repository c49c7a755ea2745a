"""Background Matting's generator and discriminator: layout, wiring, initialisation."""
from __future__ import annotations

import math

import pytest
import torch

from mattecli.families.bgm.model import BackgroundMatting, PatchDiscriminator
from mattecli.families.registry import build_model


def tiny(**kw) -> BackgroundMatting:
    torch.manual_seed(0)
    return BackgroundMatting(ngf=8, nf_part=8, n_blocks1=1, n_blocks2=1, resolution=32, **kw).eval()


def inputs(b: int = 2, size: int = 32, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(b, c, size, size, generator=g) * 2 - 1 for c in (3, 3, 1, 4)]


def test_shapes_and_ranges():
    net = tiny()
    alpha, fg = net(*inputs())
    assert alpha.shape == (2, 1, 32, 32) and fg.shape == (2, 3, 32, 32)
    assert alpha.abs().max() <= 1.0  # tanh
    assert not any(isinstance(m, (torch.nn.Tanh, torch.nn.Sigmoid)) for m in net.foreground_head.modules())


def test_official_layout_counts():
    """Full width: the official generator's parameter count, computed from its layer list by hand."""
    net = build_model("bgm", {})
    ngf, nf = 64, 64

    def conv(cin, cout, k, bias=True):
        return cin * cout * k * k + (cout if bias else 0)

    bn = lambda c: 2 * c  # noqa: E731
    enc = lambda cin: conv(cin, ngf, 7) + bn(ngf) + conv(ngf, 2 * ngf, 3) + bn(2 * ngf) + conv(2 * ngf, 4 * ngf, 3) + bn(4 * ngf)  # noqa: E731
    block = 2 * (conv(256, 256, 3) + bn(256))
    expected = (enc(3) + enc(3) + enc(1) + enc(4)
                + 3 * (conv(512, nf, 1, False) + bn(nf)) + conv(256 + 3 * nf, 256, 1, False) + bn(256)
                + 13 * block
                + conv(256, 128, 3) + bn(128) + conv(128, 64, 3) + bn(64) + conv(64, 1, 7)
                + conv(256, 128, 3) + bn(128) + conv(256, 64, 3) + bn(64) + conv(64, 3, 7))
    assert sum(p.numel() for p in net.parameters()) == expected


def _wired_forward(net: BackgroundMatting, image, back, seg, motion, motion_selector_sees: str):
    """``ResnetConditionHR.forward`` composed here from the network's parts: image and cue
    encoders, the three selectors on concat(image feature, cue feature), the combinator, the
    shared and per-branch residual blocks and the heads; ``motion_selector_sees`` names the
    feature handed to the motion selector ("motion" corrected, "background" published)."""
    half, feat = net.image_encoder(image)
    cues = {"background": net.background_encoder(back), "segmentation": net.segmentation_encoder(seg),
            "motion": net.motion_encoder(motion)}
    cs = net.context_switch
    selected = [cs.background_selector(torch.cat((feat, cues["background"]), 1)),
                cs.segmentation_selector(torch.cat((feat, cues["segmentation"]), 1)),
                cs.motion_selector(torch.cat((feat, cues[motion_selector_sees]), 1))]
    shared = net.decoder(cs.combinator(torch.cat([feat, *selected], 1)))
    alpha = net.alpha_head(net.alpha_decoder(shared))
    fg = net.foreground_head.out(torch.cat((net.foreground_head.up(net.foreground_decoder(shared)), half), 1))
    return alpha, fg


@pytest.mark.parametrize("wiring, sees", [("corrected", "motion"), ("published", "background")])
def test_motion_wiring_output_values(wiring, sees):
    """Both wirings' outputs equal the forward composed by hand; only the corrected one uses M."""
    image, back, seg, motion = inputs()
    other_motion = torch.flip(motion, dims=[0]) * -1
    reference = tiny()
    net = tiny(motion_wiring=wiring)
    net.load_state_dict(reference.state_dict())
    with torch.no_grad():
        a1, f1 = net(image, back, seg, motion)
        a2, f2 = net(image, back, seg, other_motion)
        ea, ef = _wired_forward(net, image, back, seg, motion, sees)
        wrong = _wired_forward(net, image, back, seg, motion, "background" if sees == "motion" else "motion")
    torch.testing.assert_close(a1, ea, rtol=0, atol=1e-6)
    torch.testing.assert_close(f1, ef, rtol=0, atol=1e-6)
    assert (a1 - wrong[0]).abs().max() > 1e-4  # the other wiring is a different function
    if wiring == "published":
        assert torch.equal(a1, a2) and torch.equal(f1, f2)  # M never reaches the output
    else:
        assert (a1 - a2).abs().max() > 1e-4 and (f1 - f2).abs().max() > 1e-4


def test_official_initialisation_statistics():
    net = build_model("bgm", {})
    w = net.decoder[0].conv_block[1].weight
    fan_in, fan_out = 256 * 9, 256 * 9
    bound = math.sqrt(2.0) * math.sqrt(6.0 / (fan_in + fan_out))
    assert w.abs().max() <= bound + 1e-6 and w.abs().max() > 0.9 * bound
    assert abs(w.std().item() - bound / math.sqrt(3)) < 0.02 * bound
    bn = torch.cat([m.weight.detach() for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert abs(bn.mean().item() - 1.0) < 0.02 and abs(bn.std().item() - 0.2) < 0.02
    assert all(torch.count_nonzero(m.bias) == 0 for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.bias is not None)


def test_patch_discriminator_layout():
    d = PatchDiscriminator()
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0], c.padding[0]) for c in convs] == [
        (3, 64, 2, 2), (64, 128, 2, 2), (128, 256, 2, 2), (256, 512, 1, 2), (512, 1, 1, 2)]
    out = d(torch.zeros(1, 3, 64, 64))
    # 64 -> 33 -> 17 -> 9 -> 10 -> 11 with k4 p2
    assert out.shape == (1, 1, 11, 11)


def test_bad_options_refused():
    with pytest.raises(ValueError):
        BackgroundMatting(ngf=8, nf_part=8, n_blocks1=1, n_blocks2=1, motion_wiring="other")
    with pytest.raises(ValueError):
        BackgroundMatting(ngf=8, nf_part=8, n_blocks1=1, n_blocks2=1, crop="middle")


def test_predict_official_recipe_pastes_back_inside_the_subject_box():
    net = tiny()
    image = torch.rand(1, 3, 48, 64)
    plate = image.clone()
    plate[:, :, 10:30, 20:40] = 1 - plate[:, :, 10:30, 20:40]
    seg = torch.zeros(1, 1, 48, 64)
    seg[:, :, 10:30, 20:40] = 1
    out = net.predict(image, plate, segmentation=seg)
    assert out["alpha"].shape == (1, 1, 48, 64) and out["fg"].shape == (1, 3, 48, 64)
    # box: side 20, margin 2 -> rows 8..32, cols 18..42; outside it alpha is exactly 0
    outside = torch.ones(48, 64, dtype=torch.bool)
    outside[8:32, 18:42] = False
    assert out["alpha"][0, 0][outside].abs().max() == 0
    full = tiny(crop="full").predict(image, plate, segmentation=seg)
    assert full["alpha"].shape == (1, 1, 48, 64)
