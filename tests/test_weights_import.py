"""mattecli weights import / info, and the restricted reader for foreign checkpoints.

The mmagic state dict is built here in mmagic's naming with random tensors; the reference
forward below follows mmagic's DIM (VGG16 encoder, PlainDecoder, PlainRefiner, its
MattorPreprocessor and BaseMattor post-processing) in plain torch ops, written from its
documented structure, independently of mattecli's model code.
"""
from __future__ import annotations

import collections
import json
import os
import pickle
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mattecli.errors import BadInput, MatteError
from mattecli.io.foreign import extract_state_dict, read_foreign_checkpoint

VGG_BLOCKS = ((4, 64, 2), (64, 128, 2), (128, 256, 3), (256, 512, 3), (512, 512, 3))
DECODER = (("deconv6_1", 512, 512, 1), ("deconv5_1", 512, 512, 5), ("deconv4_1", 512, 256, 5),
           ("deconv3_1", 256, 128, 5), ("deconv2_1", 128, 64, 5), ("deconv1_1", 64, 64, 5), ("deconv1", 64, 1, 5))
REFINER = (("refine_conv1", 4, 64), ("refine_conv2", 64, 64), ("refine_conv3", 64, 64), ("refine_pred", 64, 1))


def _conv(state, name, cin, cout, k, gen):
    std = (2.0 / (cin * k * k)) ** 0.5
    state[f"{name}.weight"] = torch.randn(cout, cin, k, k, generator=gen) * std
    state[f"{name}.bias"] = torch.randn(cout, generator=gen) * 0.05


def mmagic_state_dict(refiner: bool = True, seed: int = 0) -> "collections.OrderedDict[str, torch.Tensor]":
    gen = torch.Generator().manual_seed(seed)
    state: collections.OrderedDict[str, torch.Tensor] = collections.OrderedDict()
    for b, (cin, cout, n) in enumerate(VGG_BLOCKS, start=1):
        for k in range(n):
            _conv(state, f"backbone.encoder.layer{b}.{2 * k}", cin if k == 0 else cout, cout, 3, gen)
    _conv(state, "backbone.encoder.conv6", 512, 512, 1, gen)
    for name, cin, cout, k in DECODER:
        _conv(state, f"backbone.decoder.{name}", cin, cout, k, gen)
    if refiner:
        for name, cin, cout in REFINER:
            _conv(state, f"refiner.{name}", cin, cout, 3, gen)
    return state


def mmagic_reference(state, merged_rgb_255: torch.Tensor, trimap_255: torch.Tensor, refine: bool) -> torch.Tensor:
    """mmagic's DIM test path: normalise, trimap/255, reflect-pad to 32, forward, crop, clamp,
    known regions. merged Bx3xHxW in 0..255 (RGB), trimap Bx1xHxW in {0, 128, 255}."""
    mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    h, w = merged_rgb_255.shape[-2:]
    new_h, new_w = 32 * ((h - 1) // 32 + 1), 32 * ((w - 1) // 32 + 1)
    image = F.pad((merged_rgb_255 - mean) / std, (0, new_w - w, 0, new_h - h), mode="reflect")
    trimap = F.pad(trimap_255 / 255.0, (0, new_w - w, 0, new_h - h), mode="reflect")
    x = torch.cat((image, trimap), 1)
    out, indices = x, []
    for b, (_, _, n) in enumerate(VGG_BLOCKS, start=1):
        for k in range(n):
            p = f"backbone.encoder.layer{b}.{2 * k}"
            out = F.relu(F.conv2d(out, state[p + ".weight"], state[p + ".bias"], padding=1))
        out, idx = F.max_pool2d(out, 2, 2, return_indices=True)
        indices.append(idx)
    out = F.relu(F.conv2d(out, state["backbone.encoder.conv6.weight"], state["backbone.encoder.conv6.bias"]))
    for (name, _, _, k), idx in zip(DECODER[:6], [None] + indices[::-1]):
        if idx is not None:
            out = F.max_unpool2d(out, idx, 2, 2)
        p = f"backbone.decoder.{name}"
        out = F.relu(F.conv2d(out, state[p + ".weight"], state[p + ".bias"], padding=k // 2))
    raw = F.conv2d(out, state["backbone.decoder.deconv1.weight"], state["backbone.decoder.deconv1.bias"], padding=2)
    alpha = raw.sigmoid()
    if refine:
        r = torch.cat((x[:, :3], alpha), 1)
        for name in ("refine_conv1", "refine_conv2", "refine_conv3"):
            r = F.relu(F.conv2d(r, state[f"refiner.{name}.weight"], state[f"refiner.{name}.bias"], padding=1))
        r = F.conv2d(r, state["refiner.refine_pred.weight"], state["refiner.refine_pred.bias"], padding=1)
        alpha = torch.sigmoid(raw + r)
    alpha = alpha[..., :h, :w].clamp(0, 1)
    alpha = torch.where(trimap_255 == 255, torch.ones_like(alpha), alpha)
    return torch.where(trimap_255 == 0, torch.zeros_like(alpha), alpha)


def _inputs(seed: int = 1, h: int = 37, w: int = 50):
    gen = torch.Generator().manual_seed(seed)
    merged = torch.randint(0, 256, (2, 3, h, w), generator=gen).float()
    trimap = torch.full((2, 1, h, w), 128.0)
    trimap[..., :8, :] = 0
    trimap[..., -8:, :] = 255
    trimap[..., :, :5] = 0
    return merged, trimap


def _mattecli_alpha(ckpt_path: Path, merged: torch.Tensor, trimap_255: torch.Tensor) -> torch.Tensor:
    """What `matte --weights` computes: the registry's predict on [0,1] RGB and a {0,0.5,1}
    trimap, then known regions clamped."""
    from mattecli.families.dim.family import clamp_known
    from mattecli.families.registry import load_model

    model, _ = load_model(ckpt_path)
    trimap = torch.where(trimap_255 == 255, 1.0, torch.where(trimap_255 == 0, 0.0, 0.5))
    return clamp_known(model.predict(merged / 255.0, trimap)["alpha"], trimap)


@pytest.mark.parametrize("refiner", [True, False])
def test_mmagic_dim_import_matches_mmagic_forward(tmp_path, refiner):
    from mattecli.weights.importer import import_weights

    state = mmagic_state_dict(refiner=refiner)
    src = tmp_path / "dim_mmagic.pth"
    torch.save({"meta": {"mmedit_version": "0.x", "config": "model = dict(type='DIM')"},
                "state_dict": collections.OrderedDict(("module." + k, v) for k, v in state.items())}, src)
    result = import_weights("mmagic-dim", src, tmp_path / "dim.pt")
    assert result.family == "dim"
    assert result.model_config["refine"] is refiner
    merged, trimap = _inputs()
    ours = _mattecli_alpha(result.out, merged, trimap)
    ref = mmagic_reference(state, merged, trimap, refine=refiner)
    assert ours.shape == ref.shape
    unknown = trimap == 128
    assert ref[unknown].std() > 0.01  # the comparison is not between two constant maps
    assert (ours - ref).abs().max().item() <= 1e-4
    # the trimap encoding matters: mattecli's own 0.5 gives a measurably different alpha
    from mattecli.families.registry import load_model
    imported, _ = load_model(result.out)
    t01 = torch.where(trimap == 255, 1.0, torch.where(trimap == 0, 0.0, 0.5))
    with_mmagic_encoding = imported.predict(merged / 255.0, t01)["alpha"]
    imported.trimap_unknown_value = 0.5
    assert (imported.predict(merged / 255.0, t01)["alpha"] - with_mmagic_encoding).abs().max() > 1e-5
    saved = torch.load(result.out, weights_only=True)
    assert saved["stage"] == "imported"
    assert saved["source"]["format"] == "mmagic-dim" and saved["source"]["file"] == "dim_mmagic.pth"
    assert len(saved["source"]["sha256"]) == 64


def test_import_names_unused_and_missing_keys(tmp_path):
    from mattecli.weights.importer import import_weights

    state = mmagic_state_dict()
    state["backbone.decoder.extra_conv.weight"] = torch.zeros(1)
    del state["refiner.refine_conv2.bias"]
    src = tmp_path / "odd.pth"
    torch.save({"state_dict": state}, src)
    with pytest.raises(BadInput) as info:
        import_weights("mmagic-dim", src, tmp_path / "out.pt")
    message = str(info.value)
    assert "odd.pth" in message
    assert "refiner.refine_conv2.bias" in message
    assert not (tmp_path / "out.pt").exists()

    state = mmagic_state_dict()
    state["backbone.decoder.extra_conv.weight"] = torch.zeros(1)
    torch.save({"state_dict": state}, src)
    with pytest.raises(BadInput, match=r"unused: backbone\.decoder\.extra_conv\.weight"):
        import_weights("mmagic-dim", src, tmp_path / "out.pt")


class Evil:
    """Unpickled by plain pickle, this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A torch checkpoint and a bare pickle that would create ``marker`` when unpickled
    (pickling only records the call; nothing runs here)."""
    marker = tmp_path / "MARKER"
    ckpt, bare = tmp_path / "evil.pth", tmp_path / "evil.pkl"
    torch.save({"meta": Evil(marker), "state_dict": collections.OrderedDict(w=torch.ones(3))}, ckpt)
    bare.write_bytes(pickle.dumps(Evil(marker)))
    assert not marker.exists()
    return marker, ckpt, bare


def test_restricted_reader_never_runs_pickled_code(tmp_path):
    marker, ckpt, bare = _evil_files(tmp_path)
    # the files are real attacks: plain pickle runs the command (harmless here: it touches a file)
    pickle.loads(bare.read_bytes())
    assert marker.exists()
    marker.unlink()

    read = read_foreign_checkpoint(ckpt)
    assert not marker.exists()
    assert read.payload["meta"] is None
    assert any("system" in name for name in read.dropped)
    assert "system" in read.notes()[0]
    assert torch.equal(extract_state_dict(read)["w"], torch.ones(3))
    with pytest.raises(BadInput, match="evil.pkl"):
        read_foreign_checkpoint(bare)
    assert not marker.exists()


@pytest.fixture
def cli(monkeypatch, capsys):
    """The real entry point in this process: returns (exit code, stdout, stderr)."""
    from mattecli.cli.app import main

    monkeypatch.setenv("COLUMNS", "250")

    def run(*args: object) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["mattecli", *map(str, args)])
        with pytest.raises(SystemExit) as exc:
            main()
        captured = capsys.readouterr()
        return exc.value.code, captured.out, captured.err

    return run


def test_cli_import_refuses_evil_and_empty_files(tmp_path, cli):
    marker, ckpt, bare = _evil_files(tmp_path)
    code, _, err = cli("weights", "import", "mmagic-dim", bare, "--out", tmp_path / "x.pt")
    assert code == 2
    assert "evil.pkl" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = cli("weights", "import", "mmagic-dim", ckpt, "--out", tmp_path / "x.pt")
    assert code == 2 and "Traceback" not in err
    assert "not an mmagic DIM checkpoint" in err
    assert not marker.exists() and not (tmp_path / "x.pt").exists()
    empty = tmp_path / "empty.pth"
    torch.save({"meta": {"epoch": 3}}, empty)
    code, _, err = cli("weights", "import", "mmagic-dim", empty, "--out", tmp_path / "x.pt")
    assert code == 2 and "empty.pth" in err and "no state dict" in err
    code, _, err = cli("weights", "import", "nope-dim", empty, "--out", tmp_path / "x.pt")
    assert code == 2 and "mmagic-dim" in err
    code, _, err = cli("weights", "import", "mmagic-dim", empty, "--out", empty)
    assert code == 2 and "would replace" in err


def test_cli_import_then_info(tmp_path, cli):
    import hashlib

    src = tmp_path / "dim_stage1.pth"
    torch.save({"state_dict": mmagic_state_dict(refiner=False)}, src)
    out = tmp_path / "dim.pt"
    code, _, err = cli("weights", "import", "mmagic-dim", src, "--out", out)
    assert code == 0, err
    code, stdout, err = cli("weights", "info", out, "--json")
    assert code == 0, err
    info = json.loads(stdout)
    assert info["family"] == "dim" and info["stage"] == "imported" and info["guidance"] == "trimap"
    assert info["provenance"]["format"] == "mmagic-dim"
    assert info["provenance"]["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    expected_params = sum(v.numel() for v in mmagic_state_dict(refiner=False).values())
    assert info["parameters"] == expected_params
    code, stdout, _ = cli("weights", "info", out)
    assert code == 0 and "mmagic-dim" in stdout and "imported from dim_stage1.pth" in stdout
    code, _, err = cli("weights", "info", src)
    assert code == 2 and "dim_stage1.pth" in err and "Traceback" not in err
