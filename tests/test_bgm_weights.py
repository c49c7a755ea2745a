"""`weights import bgm-v1`, `weights info` and `export` for Background Matting.

The official generator is rebuilt here from ``networks.py``'s description in plain torch
(``ResnetConditionHR`` with its attribute names, so its state dict has the official keys),
independently of mattecli's model code; its forward feeds the motion selector the background
features, as the released model's did.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from torch import nn

from mattecli.cli.app import main
from mattecli.families.bgm.cues import segmentation_from_plate
from mattecli.families.registry import build_model, load_model
from mattecli.io.checkpoint import load_checkpoint, save_checkpoint
from mattecli.io.images import read_alpha_float, write_image


def _cbr(cin, cout, k, s=1, bias=True):
    return [nn.Conv2d(cin, cout, k, stride=s, padding=k // 2, bias=bias), nn.BatchNorm2d(cout), nn.ReLU(True)]


def _enc(cin, ngf):
    return nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(cin, ngf, 7), nn.BatchNorm2d(ngf), nn.ReLU(True),
                         *_cbr(ngf, 2 * ngf, 3, 2), *_cbr(2 * ngf, 4 * ngf, 3, 2))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv_block = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), nn.BatchNorm2d(c), nn.ReLU(True),
                                        nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), nn.BatchNorm2d(c))

    def forward(self, x):
        return x + self.conv_block(x)


def _up(cin, cout):
    return [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True), *_cbr(cin, cout, 3)]


class OfficialG(nn.Module):
    def __init__(self, ngf=8, nf=8, b1=2, b2=1):
        super().__init__()
        self.model_enc1 = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), nn.BatchNorm2d(ngf), nn.ReLU(True),
                                        *_cbr(ngf, 2 * ngf, 3, 2))
        self.model_enc2 = nn.Sequential(*_cbr(2 * ngf, 4 * ngf, 3, 2))
        self.model_enc_back, self.model_enc_seg, self.model_enc_multi = _enc(3, ngf), _enc(1, ngf), _enc(4, ngf)
        self.comb_back = nn.Sequential(*_cbr(8 * ngf, nf, 1, bias=False))
        self.comb_seg = nn.Sequential(*_cbr(8 * ngf, nf, 1, bias=False))
        self.comb_multi = nn.Sequential(*_cbr(8 * ngf, nf, 1, bias=False))
        self.model_res_dec = nn.Sequential(*_cbr(4 * ngf + 3 * nf, 4 * ngf, 1, bias=False),
                                           *[Block(4 * ngf) for _ in range(b1)])
        self.model_res_dec_al = nn.Sequential(*[Block(4 * ngf) for _ in range(b2)])
        self.model_res_dec_fg = nn.Sequential(*[Block(4 * ngf) for _ in range(b2)])
        self.model_al_out = nn.Sequential(*_up(4 * ngf, 2 * ngf), *_up(2 * ngf, ngf), nn.ReflectionPad2d(3),
                                          nn.Conv2d(ngf, 1, 7), nn.Tanh())
        self.model_dec_fg1 = nn.Sequential(*_up(4 * ngf, 2 * ngf))
        self.model_fg_out = nn.Sequential(*_up(4 * ngf, ngf), nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7))

    def forward(self, image, back, seg, multi):
        f1 = self.model_enc1(image)
        f = self.model_enc2(f1)
        b = self.model_enc_back(back)
        s = self.model_enc_seg(seg)
        self.model_enc_multi(multi)  # computed but, in the released model, never used
        oth = torch.cat([self.comb_back(torch.cat([f, b], 1)), self.comb_seg(torch.cat([f, s], 1)),
                         self.comb_multi(torch.cat([f, b], 1))], 1)
        dec = self.model_res_dec(torch.cat([f, oth], 1))
        al = self.model_al_out(self.model_res_dec_al(dec))
        fg = self.model_fg_out(torch.cat([self.model_dec_fg1(self.model_res_dec_fg(dec)), f1], 1))
        return al, fg


def official_state(seed=0):
    torch.manual_seed(seed)
    g = OfficialG()
    with torch.no_grad():
        for m in g.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.normal_(1, 0.2)
                m.bias.normal_(0, 0.1)
    return g.eval()


def run_cli(args, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["mattecli", *map(str, args)])
    with pytest.raises(SystemExit) as exc:
        main()
    captured = capsys.readouterr()
    return exc.value.code, captured.err + captured.out


@pytest.mark.parametrize("prefixed", [True, False])
def test_import_official_generator_matches_the_official_forward(tmp_path, capsys, monkeypatch, prefixed):
    official = official_state()
    state = {("module." if prefixed else "") + k: v for k, v in official.state_dict().items()}
    torch.save(state, tmp_path / "netG_epoch_12.pth")
    code, out = run_cli(["weights", "import", "bgm-v1", tmp_path / "netG_epoch_12.pth", "--out", tmp_path / "bgm.pt"],
                        capsys, monkeypatch)
    assert code == 0, out
    net, ckpt = load_model(tmp_path / "bgm.pt")
    assert ckpt["model_config"]["motion_wiring"] == "published"
    assert (ckpt["model_config"]["ngf"], ckpt["model_config"]["n_blocks1"], ckpt["model_config"]["n_blocks2"]) == (8, 2, 1)
    gen = torch.Generator().manual_seed(3)
    x = [torch.rand(2, c, 32, 32, generator=gen) * 2 - 1 for c in (3, 3, 1, 4)]
    with torch.no_grad():
        want_a, want_f = official(*x)
        got_a, got_f = net(*x)
    assert (got_a - want_a).abs().max() < 1e-5 and (got_f - want_f).abs().max() < 1e-5
    code, out = run_cli(["weights", "info", tmp_path / "bgm.pt"], capsys, monkeypatch)
    assert code == 0 and "bgm" in out and "bgm-v1" in out


def test_import_refuses_a_discriminator_file(tmp_path, capsys, monkeypatch):
    torch.save({"module.layer0.0.weight": torch.zeros(64, 3, 4, 4)}, tmp_path / "netD_epoch_1.pth")
    code, err = run_cli(["weights", "import", "bgm-v1", tmp_path / "netD_epoch_1.pth", "--out", tmp_path / "x.pt"],
                        capsys, monkeypatch)
    assert code == 2 and "not a Background Matting generator" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.pt").exists()


def test_export_equals_matte(tmp_path, capsys, monkeypatch):
    from mattecli.export.run import export_checkpoint, run_onnx

    config = {"ngf": 4, "nf_part": 4, "n_blocks1": 1, "n_blocks2": 1, "resolution": 32, "crop": "full",
              "largest_component": False}
    torch.manual_seed(2)
    net = build_model("bgm", config)
    save_checkpoint(tmp_path / "b.pt", {"family": "bgm", "model_config": config, "model": net.state_dict()})
    rng = np.random.default_rng(0)
    plate = (rng.random((40, 56, 3)) * 255).astype(np.uint8)
    image = plate.copy()
    image[8:34, 14:40] = (200, 80, 50)
    write_image(tmp_path / "in" / "a.png", image)
    write_image(tmp_path / "plate.png", plate)
    code, err = run_cli(["matte", tmp_path / "in", "--background", tmp_path / "plate.png", "--weights", tmp_path / "b.pt",
                         "--out", tmp_path / "out", "--output", "alpha", "--alpha-16bit", "--device", "cpu"],
                        capsys, monkeypatch)
    assert code == 0, err
    matte = read_alpha_float(tmp_path / "out" / "alpha" / "a.png")
    export_checkpoint(tmp_path / "b.pt", "onnx", tmp_path / "b.onnx")
    img = image.transpose(2, 0, 1)[None].astype(np.float32) / 255
    grey = (0.299 * img[:, 0] + 0.587 * img[:, 1] + 0.114 * img[:, 2])[:, None]
    inputs = (img, plate.transpose(2, 0, 1)[None].astype(np.float32) / 255,
              segmentation_from_plate(image, plate)[None, None], np.repeat(grey, 4, axis=1))
    alpha = run_onnx(tmp_path / "b.onnx", inputs)[0][0, 0]
    assert np.abs(alpha - matte).max() <= 1e-4 + 0.5 / 65535
